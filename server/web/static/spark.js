// A sparkline: one vital's readings over the last 24 hours as a small inline SVG (no library).

const SVG = "http://www.w3.org/2000/svg";
export const DAY_MS = 24 * 60 * 60 * 1000;
export const WIDTH = 96, HEIGHT = 24, PAD = 3;

/**
 * Where the points go (pure, so `node --test` checks it): points [{t (ms), value}] in any order.
 * Time runs left to right over the whole day, so a gap in the observations shows as a gap; values
 * fill the height between their own lowest (bottom) and highest (top), a flat line sits midway.
 * Null with fewer than two readings in the day: nothing to draw a trend from.
 */
export function trend(points, now) {
  const day = points.filter((point) => point.t > now - DAY_MS && point.t <= now).sort((a, b) => a.t - b.t);
  if (day.length < 2) return null;
  const values = day.map((point) => point.value);
  const low = Math.min(...values), high = Math.max(...values);
  const x = (t) => Number((PAD + (WIDTH - 2 * PAD) * (t - (now - DAY_MS)) / DAY_MS).toFixed(1));
  const y = (value) => Number((high === low ? HEIGHT / 2 : PAD + (HEIGHT - 2 * PAD) * (high - value) / (high - low)).toFixed(1));
  return { count: day.length, low, high, xy: day.map((point) => [x(point.t), y(point.value)]) };
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

export function sparkline(points, now, label) {
  const drawn = trend(points, now);
  if (!drawn) return null;
  const [lastX, lastY] = drawn.xy[drawn.xy.length - 1];
  const drawing = svg("svg", { class: "spark", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
    "aria-label": `${label}, last 24 hours: ${drawn.count} readings from ${drawn.low} to ${drawn.high}` });
  drawing.append(svg("rect", { class: "spark-day", width: WIDTH, height: HEIGHT, rx: "2" }), // the whole 24 h
    svg("polyline", { points: drawn.xy.map((xy) => xy.join(",")).join(" "), fill: "none", stroke: "currentColor",
      "stroke-width": "1.5", "stroke-linejoin": "round", "stroke-linecap": "round" }),
    svg("circle", { cx: lastX, cy: lastY, r: "2.2", fill: "currentColor" }));
  return drawing;
}
