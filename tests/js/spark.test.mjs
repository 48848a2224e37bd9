// Where a sparkline's points go (server/web/static/spark.js): run by `node --test tests/js/`.
import assert from "node:assert/strict";
import test from "node:test";

import { DAY_MS, HEIGHT, PAD, WIDTH, trend } from "../../server/web/static/spark.js";

const NOW = Date.parse("2026-11-28T12:00:00Z");
const HOUR = 3_600_000;

test("fewer than two readings in the last 24 hours draw nothing", () => {
  assert.equal(trend([], NOW), null);
  assert.equal(trend([{ t: NOW - HOUR, value: 80 }], NOW), null);
  assert.equal(trend([{ t: NOW - HOUR, value: 80 }, { t: NOW - DAY_MS, value: 70 }], NOW), null); // 24 h ago: out
  assert.equal(trend([{ t: NOW - HOUR, value: 80 }, { t: NOW + HOUR, value: 70 }], NOW), null);   // future: out
});

test("time runs left to right over the whole day, highest value at the top", () => {
  const drawn = trend([{ t: NOW, value: 138 }, { t: NOW - DAY_MS / 2, value: 105 }, { t: NOW - DAY_MS + 1, value: 72 }], NOW);
  assert.deepEqual({ ...drawn, xy: undefined }, { count: 3, low: 72, high: 138, xy: undefined });
  assert.deepEqual(drawn.xy, [[PAD, HEIGHT - PAD], [WIDTH / 2, HEIGHT / 2], [WIDTH - PAD, PAD]]);
});

test("a flat line sits midway", () => {
  const drawn = trend([{ t: NOW - 2 * HOUR, value: 97 }, { t: NOW - HOUR, value: 97 }], NOW);
  assert.deepEqual(drawn.xy.map(([, y]) => y), [HEIGHT / 2, HEIGHT / 2]);
});
