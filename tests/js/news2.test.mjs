// NEWS2 (RCP 2017) at every edge of its chart: run by `node --test tests/js/` (and tests/test_news2_js.py).
import assert from "node:assert/strict";
import test from "node:test";

import { BANDS, PARAMETERS, STALE_AFTER_MS, bandOf, describe, news2, scoreParameter } from "../../server/web/static/news2.js";

// [kind, [value, score], ...]: each band's two edges (and a step beyond), as the RCP chart prints them.
const EDGES = {
  resp_rate: [[0, 3], [8, 3], [9, 1], [11, 1], [12, 0], [20, 0], [21, 2], [24, 2], [25, 3], [60, 3]],
  spo2: [[50, 3], [91, 3], [92, 2], [93, 2], [94, 1], [95, 1], [96, 0], [100, 0]],
  systolic_bp: [[40, 3], [90, 3], [91, 2], [100, 2], [101, 1], [110, 1], [111, 0], [219, 0], [220, 3], [300, 3]],
  heart_rate: [[20, 3], [40, 3], [41, 1], [50, 1], [51, 0], [90, 0], [91, 1], [110, 1], [111, 2], [130, 2],
    [131, 3], [250, 3]],
  temperature: [[30, 3], [35.0, 3], [35.1, 1], [36.0, 1], [36.1, 0], [38.0, 0], [38.1, 1], [39.0, 1], [39.1, 2], [42, 2]],
  supplemental_oxygen: [[0, 0], [0.5, 2], [2, 2], [15, 2]],
  consciousness: [[0, 0], [1, 3], [2, 3], [3, 3], [4, 3]], // A, new Confusion, V, P, U
};

const NOW = Date.parse("2026-11-28T12:00:00Z");
const at = (msAgo) => new Date(NOW - msAgo).toISOString();

/** Latest readings, all fresh, all scoring 0 (a well patient), with `changes` as kind -> value. */
function readings(changes = {}) {
  const normal = { resp_rate: 16, spo2: 97, supplemental_oxygen: 0, systolic_bp: 120, heart_rate: 72,
    consciousness: 0, temperature: 37 };
  return new Map(Object.entries({ ...normal, ...changes }).map(([kind, value]) => [kind, { value, measured_at: at(60_000) }]));
}

test("every parameter's score at every band edge of the chart", () => {
  for (const [kind, edges] of Object.entries(EDGES)) {
    for (const [value, score] of edges) assert.equal(scoreParameter(kind, value), score, `${kind} ${value}`);
  }
  assert.deepEqual(PARAMETERS.map((parameter) => parameter.kind).sort(), Object.keys(EDGES).sort());
  assert.equal(scoreParameter("diastolic_bp", 40), undefined); // not a NEWS2 parameter
});

test("values between the chart's printed numbers are rounded to its precision first", () => {
  assert.equal(scoreParameter("heart_rate", 90.4), 0);
  assert.equal(scoreParameter("heart_rate", 90.5), 1);
  assert.equal(scoreParameter("temperature", 38.04), 0);
  assert.equal(scoreParameter("temperature", 38.06), 1);
  assert.equal(scoreParameter("spo2", 95.6), 0);
});

test("aggregate bands: 0, 1-4 low, a single 3 low-medium, 5-6 medium, 7 or more high", () => {
  assert.equal(bandOf(0, 0), "zero");
  assert.equal(bandOf(1, 1), "low");
  assert.equal(bandOf(4, 2), "low");
  assert.equal(bandOf(3, 3), "low-medium");
  assert.equal(bandOf(4, 3), "low-medium");
  assert.equal(bandOf(5, 2), "medium");
  assert.equal(bandOf(5, 3), "medium"); // 5 or more outranks the single 3
  assert.equal(bandOf(6, 3), "medium");
  assert.equal(bandOf(7, 2), "high");
  assert.equal(bandOf(20, 3), "high");
});

test("whole patients through the bands, with the clinical response the chart names", () => {
  const well = news2(readings(), { now: NOW });
  assert.deepEqual({ total: well.total, band: well.band, complete: well.complete, text: well.text },
    { total: 0, band: "zero", complete: true, text: "NEWS2 0 low" });
  assert.equal(well.response, "Continue routine NEWS monitoring (at least every 12 hours).");
  const cases = [
    [{ heart_rate: 91 }, 1, "low"],
    [{ heart_rate: 111, spo2: 94 }, 3, "low"],
    [{ heart_rate: 111, spo2: 94, temperature: 38.1 }, 4, "low"],
    [{ consciousness: 2 }, 3, "low-medium"],            // responds to Voice
    [{ resp_rate: 8, temperature: 36.0 }, 4, "low-medium"],
    [{ supplemental_oxygen: 2, heart_rate: 111, temperature: 38.1 }, 5, "medium"],
    [{ supplemental_oxygen: 2, heart_rate: 131, temperature: 39.1 }, 7, "high"],
    [{ systolic_bp: 220, heart_rate: 111, temperature: 38.1 }, 6, "medium"],
  ];
  for (const [changes, total, band] of cases) {
    const score = news2(readings(changes), { now: NOW });
    assert.deepEqual([score.total, score.band, score.complete], [total, band, true], JSON.stringify(changes));
    assert.equal(score.response, BANDS[band].response);
  }
  // The deteriorating patient: HR 138, SpO2 86 %, 39.6 °C, RR 28, BP 84/50.
  const deteriorating = news2(readings({ heart_rate: 138, spo2: 86, temperature: 39.6, resp_rate: 28, systolic_bp: 84 }),
    { now: NOW });
  assert.deepEqual([deteriorating.total, deteriorating.band, deteriorating.text], [14, "high", "NEWS2 14 high"]);
  assert.deepEqual(deteriorating.scores, { resp_rate: 3, spo2: 3, supplemental_oxygen: 0, systolic_bp: 3,
    heart_rate: 3, consciousness: 0, temperature: 2 });
  assert.match(deteriorating.response, /^Emergency response: .*continuous monitoring of vital signs\)\.$/);
  assert.match(news2(readings({ heart_rate: 111, spo2: 94, temperature: 38.1, resp_rate: 21 }), { now: NOW }).response,
    /^Urgent response: /);
});

test("missing and stale readings make it incomplete, named, and are not scored", () => {
  const latest = readings({ heart_rate: 131 });
  latest.delete("consciousness");
  latest.delete("supplemental_oxygen");
  latest.set("spo2", { value: 85, measured_at: at(STALE_AFTER_MS + 1) });  // 3 if it counted
  latest.set("resp_rate", { value: 16, measured_at: at(STALE_AFTER_MS) }); // exactly 4 h: still fresh
  const score = news2(latest, { now: NOW });
  assert.deepEqual([score.total, score.band, score.complete, score.missing, score.stale],
    [3, "low-medium", false, ["air or oxygen", "consciousness"], ["SpO₂"]]);
  assert.equal(score.text, "NEWS2 ≥ 3 low–medium, incomplete: no air or oxygen, consciousness; stale: SpO₂");
  const shorter = news2(latest, { now: NOW, staleAfterMs: 60 * 60 * 1000 }); // the age is configurable
  assert.deepEqual(shorter.stale, ["respiration rate", "SpO₂"]);
  const nothing = news2(new Map(), { now: NOW });
  assert.deepEqual([nothing.total, nothing.complete, nothing.missing.length], [0, false, 7]);
  assert.equal(news2({}, { now: NOW }).text, `NEWS2 ≥ 0 low, incomplete: no ${PARAMETERS.map((p) => p.label).join(", ")}`);
  assert.equal(describe(5, "medium", false, [], ["pulse"]), "NEWS2 ≥ 5 medium, incomplete: stale: pulse");
});

test("a plain object of readings works as a Map does", () => {
  const object = Object.fromEntries(readings({ heart_rate: 131 }));
  assert.equal(news2(object, { now: NOW }).total, 3);
});
