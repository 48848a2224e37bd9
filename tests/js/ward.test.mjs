// The ward's data (server/web/static/ward.js) facing a 410 push: run by `node --test tests/js/`.
import assert from "node:assert/strict";
import test from "node:test";

import { Ward } from "../../server/web/static/ward.js";

// A connection that answers every request as a server with one patient and no vitals would.
function fakeConnection() {
  const asked = [];
  return {
    asked,
    ws: null,
    async request(stream, action, keys) {
      asked.push({ stream, action, since: keys.since });
      if (action === "subscribe") return { response_status: 201, data: { cursor: `${stream}-cursor-${asked.length}` } };
      const results = stream === "patients" ? [{ id: 1, first_name: "Ada", dismissal_date: null }] : { results: [] };
      return { response_status: 200, data: results };
    },
  };
}

test("a 410 push (changes lost on the server) drops the cursor and lists the stream again", async () => {
  const ward = new Ward(() => {});
  const connection = fakeConnection();
  await ward.sync(connection);
  assert.ok(ward.cursors.patients);
  connection.asked.length = 0;
  ward.push("patients", { errors: ["Cursor expired, list again."], data: null, action: "subscribe",
    response_status: 410, request_id: "dashboard:patients" });
  await new Promise((resolve) => setTimeout(resolve, 0));
  await new Promise((resolve) => setTimeout(resolve, 0));
  const patients = connection.asked.filter((call) => call.stream === "patients");
  assert.deepEqual(patients.map((call) => [call.action, call.since]),
    [["subscribe", undefined], ["list", undefined]]);
  assert.equal(ward.patients.get(1).first_name, "Ada");
});

test("a push of another subscription is not ours", () => {
  const ward = new Ward(() => { throw new Error("no change expected"); });
  ward.push("patients", { response_status: 410, request_id: "someone-else" });
});
