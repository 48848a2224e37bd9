// NEWS2, the Royal College of Physicians' National Early Warning Score 2 (2017): the one
// implementation of its chart (tests/js/news2.test.mjs checks every band edge). Pure functions,
// no DOM, so the page and `node --test` load the same file.
//
// Scored from each parameter's latest reading. SpO2 is scored on Scale 1: Scale 2 (target 88-92 %
// for hypercapnic respiratory failure) needs a per-patient prescription the server does not store.

export const STALE_AFTER_MS = 4 * 60 * 60 * 1000; // a reading older than this is not scored

// [kind, label, [[upper edge, score], ...] in rising order, ending with Infinity]; a value is
// rounded to the chart's precision (whole numbers; tenths for temperature), then takes the score
// of the first band whose upper edge it does not exceed.
const CHART = [
  ["resp_rate", "respiration rate", 0, [[8, 3], [11, 1], [20, 0], [24, 2], [Infinity, 3]]],
  ["spo2", "SpO₂", 0, [[91, 3], [93, 2], [95, 1], [Infinity, 0]]],
  ["supplemental_oxygen", "air or oxygen", 1, null], // any flow (L/min) above 0 is oxygen: 2
  ["systolic_bp", "systolic BP", 0, [[90, 3], [100, 2], [110, 1], [219, 0], [Infinity, 3]]],
  ["heart_rate", "pulse", 0, [[40, 3], [50, 1], [90, 0], [110, 1], [130, 2], [Infinity, 3]]],
  ["consciousness", "consciousness", 0, null],       // ACVPU code: 0 Alert scores 0, C/V/P/U 3
  ["temperature", "temperature", 1, [[35, 3], [36, 1], [38, 0], [39, 1], [Infinity, 2]]],
];

export const PARAMETERS = CHART.map(([kind, label]) => ({ kind, label }));

// The chart's clinical response to each band (RCP NEWS2 chart 3, with its monitoring frequency).
export const BANDS = {
  zero: { risk: "low", label: "low", response: "Continue routine NEWS monitoring (at least every 12 hours)." },
  low: { risk: "low", label: "low",
    response: "Inform the registered nurse, who must assess the patient and decide whether to monitor " +
      "more often or escalate care (observations at least every 4–6 hours)." },
  "low-medium": { risk: "low–medium", label: "low–medium",
    response: "Registered nurse to inform the medical team caring for the patient, who will review and " +
      "decide whether escalation of care is necessary (observations at least hourly)." },
  medium: { risk: "medium", label: "medium",
    response: "Urgent response: registered nurse to inform the medical team immediately and request urgent " +
      "assessment by a clinician competent in acute illness; care in an environment with monitoring " +
      "(observations at least hourly)." },
  high: { risk: "high", label: "high",
    response: "Emergency response: registered nurse to inform the medical team immediately (at least " +
      "specialist registrar); emergency assessment by a critical care team with advanced airway skills; " +
      "consider transfer to level 2 or 3 care (continuous monitoring of vital signs)." },
};

function roundTo(value, decimals) {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** The score (0-3) of one parameter's value; undefined for a kind NEWS2 does not score. */
export function scoreParameter(kind, value) {
  const row = CHART.find(([name]) => name === kind);
  if (!row) return undefined;
  const [, , decimals, bands] = row;
  if (kind === "supplemental_oxygen") return value > 0 ? 2 : 0;
  if (kind === "consciousness") return value === 0 ? 0 : 3;
  const rounded = roundTo(value, decimals);
  return bands.find(([upper]) => rounded <= upper)[1];
}

/** The band of an aggregate score, given the highest single parameter's score. */
export function bandOf(total, highestSingle) {
  if (total >= 7) return "high";
  if (total >= 5) return "medium";
  if (highestSingle >= 3) return "low-medium";
  return total === 0 ? "zero" : "low";
}

/**
 * NEWS2 from a patient's latest readings: a Map (or object) of kind -> {value, measured_at}.
 * Missing and stale readings are not scored and are named; the total of the rest is then a lower
 * bound (every score is >= 0), and `complete` is false.
 */
export function news2(latest, { now = Date.now(), staleAfterMs = STALE_AFTER_MS } = {}) {
  const get = (kind) => (latest instanceof Map ? latest.get(kind) : latest?.[kind]);
  const scores = {}, missing = [], stale = [];
  for (const [kind, label] of CHART) {
    const reading = get(kind);
    if (!reading) { missing.push(label); continue; }
    if (now - Date.parse(reading.measured_at) > staleAfterMs) { stale.push(label); continue; }
    scores[kind] = scoreParameter(kind, reading.value);
  }
  const values = Object.values(scores);
  const total = values.reduce((sum, score) => sum + score, 0);
  const band = bandOf(total, Math.max(0, ...values));
  const complete = missing.length === 0 && stale.length === 0;
  return { total, scores, band, ...BANDS[band], complete, missing, stale, text: describe(total, band, complete, missing, stale) };
}

/** The wall's short form, under its "NEWS2" column header: "19 high", "≥ 1 low, incomplete" (the
 * missing and stale readings show in their own columns there). */
export function brief(total, band, complete) {
  return `${complete ? "" : "≥ "}${total} ${BANDS[band].label}${complete ? "" : ", incomplete"}`;
}

/** One line for people: "NEWS2 7 high", "NEWS2 ≥ 3 low–medium, incomplete: no consciousness; stale: pulse". */
export function describe(total, band, complete, missing = [], stale = []) {
  const head = `NEWS2 ${complete ? "" : "≥ "}${total} ${BANDS[band].label}`;
  if (complete) return head;
  const gaps = [];
  if (missing.length) gaps.push(`no ${missing.join(", ")}`);
  if (stale.length) gaps.push(`stale: ${stale.join(", ")}`);
  return `${head}, incomplete: ${gaps.join("; ")}`;
}
