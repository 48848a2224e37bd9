// A sparkline: one vital's readings over the last 24 hours as a small inline SVG (no library).

const SVG = "http://www.w3.org/2000/svg";
export const DAY_MS = 24 * 60 * 60 * 1000;
const WIDTH = 96, HEIGHT = 24, PAD = 3;

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

// points: [{t (ms), value}] in any order. Time runs left to right over the whole day, so a gap in
// the observations shows as a gap; values fill the height between their own lowest and highest.
export function sparkline(points, now, label) {
  const day = points.filter((point) => point.t > now - DAY_MS && point.t <= now).sort((a, b) => a.t - b.t);
  if (day.length < 2) return null;
  const values = day.map((point) => point.value);
  const low = Math.min(...values), high = Math.max(...values);
  const x = (t) => (PAD + (WIDTH - 2 * PAD) * (t - (now - DAY_MS)) / DAY_MS).toFixed(1);
  const y = (value) => (high === low ? HEIGHT / 2 : PAD + (HEIGHT - 2 * PAD) * (high - value) / (high - low)).toFixed(1);
  const coordinates = day.map((point) => `${x(point.t)},${y(point.value)}`);
  const last = day[day.length - 1];
  const drawing = svg("svg", { class: "spark", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
    "aria-label": `${label}, last 24 hours: ${day.length} readings from ${low} to ${high}` });
  drawing.append(svg("rect", { class: "spark-day", width: WIDTH, height: HEIGHT, rx: "2" }), // the whole 24 h
  svg("polyline", { points: coordinates.join(" "), fill: "none", stroke: "currentColor",
    "stroke-width": "1.5", "stroke-linejoin": "round", "stroke-linecap": "round" }),
  svg("circle", { cx: x(last.t), cy: y(last.value), r: "2.2", fill: "currentColor" }));
  return drawing;
}
