// The ward dashboard page: sign in, the live table of current inpatients with NEWS2, admit / edit / discharge.
import { STALE_AFTER_MS, news2 } from "./news2.js";
import { Connection } from "./socket.js";
import { Ward } from "./ward.js";

const $ = (selector) => document.querySelector(selector);
const STATUS_TEXT = { connecting: "Connecting…", live: "Live", connected: "Connected (no live updates)",
  reconnecting: "Reconnecting…", offline: "Offline" };
// Shown in this order; blood pressure (systolic_bp, diastolic_bp) goes after the heart rate.
const VITAL_LABELS = [["heart_rate", "HR", "Heart rate"], ["spo2", "SpO₂", "Oxygen saturation"],
  ["supplemental_oxygen", "O₂", "Supplemental oxygen"], ["resp_rate", "RR", "Respiratory rate"],
  ["temperature", "Temp", "Temperature"], ["consciousness", "ACVPU", "Consciousness (ACVPU)"]];
const ACVPU = [["A", "Alert"], ["C", "new Confusion"], ["V", "responds to Voice"], ["P", "responds to Pain"],
  ["U", "Unresponsive"]];
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const dayClockFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
// A reading older than this is marked stale and not scored: ?stale_hours=N, default 4 (news2.js).
const staleHours = Number(new URLSearchParams(location.search).get("stale_hours"));
const STALE_MS = staleHours > 0 ? staleHours * 3_600_000 : STALE_AFTER_MS;

const view = { sort: "name", direction: "ascending", search: "", user: null };
const ward = new Ward(render);
const connection = new Connection({
  onStatus: showStatus,
  onOpen: async () => showStatus((await ward.sync(connection)) ? "live" : "connected"),
  onPush: (stream, payload) => ward.push(stream, payload),
  onAuthLost: () => showSignIn("Your session has ended. Please sign in again."),
});

// --- helpers ---------------------------------------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const fullName = (patient) => `${patient.first_name} ${patient.last_name}`;
const pad = (number) => String(number).padStart(2, "0");

function toLocalInput(iso) { // "2026-11-28T09:30:00Z" -> the datetime-local value in this browser's zone
  if (!iso) return "";
  const date = new Date(iso);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const fromLocalInput = (value) => (value ? new Date(value).toISOString() : undefined);

function announce(text) {
  $("#notice").textContent = text;
}

// Away from the server, the page says since when its data may be out of date, and dims the table.
function showStatus(state) {
  const away = state === "offline" || state === "reconnecting";
  const heard = connection.lastHeard;
  $("#connection").dataset.state = state;
  $("#connection-text").textContent = STATUS_TEXT[state] +
    (away && heard ? ` — data as of ${when(new Date(heard).toISOString(), Date.now())}` : "");
  $("#ward").classList.toggle("away", away);
}

// --- field errors ----------------------------------------------------------------------------

function clearErrors(form) {
  for (const node of form.querySelectorAll(".error, .form-error")) node.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Put the server's messages next to their fields; anything else goes to the form's own line.
function showErrors(form, prefix, errors) {
  clearErrors(form);
  const fields = errors.length === 1 && typeof errors[0] === "object" ? errors[0] : { non_field_errors: errors };
  let first = null;
  for (const [field, messages] of Object.entries(fields)) {
    const input = form.querySelector(`#${prefix}-${field}`);
    const text = [].concat(messages).join(" ");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      $(`#${prefix}-${field}-error`).textContent = text;
      first = first ?? input;
    } else {
      const line = $(`#${prefix}-error`);
      line.textContent = `${line.textContent} ${text}`.trim();
    }
  }
  (first ?? form.querySelector("input, button")).focus();
}

async function send(form, prefix, stream, action, keys) {
  try {
    const reply = await connection.request(stream, action, keys);
    if (reply.response_status >= 400) { showErrors(form, prefix, reply.errors); return null; }
    clearErrors(form);
    return reply;
  } catch {
    showErrors(form, prefix, ["Not connected to the server; try again when the indicator says Live."]);
    return null;
  }
}

// --- the table -------------------------------------------------------------------------------

function visiblePatients() {
  const words = view.search.toLowerCase().split(/\s+/).filter(Boolean);
  const rows = [...ward.patients.values()].filter((patient) => {
    const name = `${patient.first_name} ${patient.last_name}`.toLowerCase();
    return words.every((word) => name.includes(word));
  });
  const byName = (a, b) => a.last_name.localeCompare(b.last_name) || a.first_name.localeCompare(b.first_name);
  const byAdmission = (a, b) => a.admission_date.localeCompare(b.admission_date);
  const compare = view.sort === "name" ? byName : byAdmission;
  rows.sort((a, b) => (compare(a, b) || a.id - b.id) * (view.direction === "ascending" ? 1 : -1));
  return rows;
}

function when(iso, now) { // the time, with the date when it is not today
  const date = new Date(iso);
  const today = date.toDateString() === new Date(now).toDateString();
  return (today ? clockFormat : dayClockFormat).format(date);
}

function readingText(kind, short, vital) {
  if (kind === "supplemental_oxygen") return vital.value > 0 ? `O₂ ${vital.value} ${vital.unit}` : "Air (no O₂)";
  if (kind === "consciousness") return `ACVPU ${ACVPU[vital.value]?.[0] ?? vital.value}`;
  return `${short} ${vital.value} ${vital.unit}`;
}

// One value with its own time; stale ones say so in words, not only by their style.
function reading(title, text, vital, now) {
  const stale = now - Date.parse(vital.measured_at) > STALE_MS;
  return element("span", { class: stale ? "vital stale" : "vital", title, "data-kind": vital.kind },
    element("span", { class: "reading", text }), " ",
    element("time", { datetime: vital.measured_at, text: when(vital.measured_at, now) }),
    ...(stale ? [" ", element("span", { class: "stale-tag", text: "stale" })] : []));
}

function bloodPressure(kinds, now) {
  const systolic = kinds.get("systolic_bp"), diastolic = kinds.get("diastolic_bp");
  if (systolic && diastolic && systolic.measured_at === diastolic.measured_at) {
    return [reading("Blood pressure", `BP ${systolic.value}/${diastolic.value} ${systolic.unit}`, systolic, now)];
  }
  return [ // measured apart (or only one of them): each with its own time
    ...(systolic ? [reading("Systolic blood pressure", `BP ${systolic.value}/– ${systolic.unit}`, systolic, now)] : []),
    ...(diastolic ? [reading("Diastolic blood pressure", `BP –/${diastolic.value} ${diastolic.unit}`, diastolic, now)] : []),
  ];
}

function vitalsCell(patientId, now) {
  const kinds = ward.latest.get(patientId);
  if (!kinds || kinds.size === 0) return element("td", { class: "muted", text: ward.hasVitals ? "No vitals yet" : "—" });
  const parts = [];
  for (const [kind, short, long] of VITAL_LABELS) {
    const vital = kinds.get(kind);
    if (vital) parts.push(reading(kind === "consciousness" ? ACVPU[vital.value]?.[1] ?? long : long,
      readingText(kind, short, vital), vital, now));
    if (kind === "heart_rate") parts.push(...bloodPressure(kinds, now));
  }
  return element("td", {}, element("div", { class: "vitals" }, ...parts));
}

// NEWS2 by colour and in words, with the chart's response; incomplete names what is missing or stale.
function news2Cell(patientId, now) {
  const score = news2(ward.latest.get(patientId) ?? new Map(), { now, staleAfterMs: STALE_MS });
  return element("td", { class: "news2", "data-band": score.band, "data-complete": String(score.complete) },
    element("span", { class: "badge", text: score.text }),
    element("span", { class: "response", text: score.response }));
}

function patientRow(patient, now) {
  const name = fullName(patient);
  const actions = element("td", { class: "row-actions" });
  if (view.user?.role === "editor") {
    actions.append(
      element("button", { type: "button", class: "secondary", "data-action": "edit", "data-id": patient.id, "aria-label": `Edit ${name}`, text: "Edit" }),
      element("button", { type: "button", class: "danger", "data-action": "discharge", "data-id": patient.id, "aria-label": `Discharge ${name}`, text: "Discharge" }));
  }
  return element("tr", { "data-id": patient.id },
    element("th", { scope: "row", text: `${patient.last_name}, ${patient.first_name}` }),
    element("td", {}, element("time", { datetime: patient.admission_date, text: timeFormat.format(new Date(patient.admission_date)) })),
    news2Cell(patient.id, now), vitalsCell(patient.id, now), actions);
}

function render() {
  const focused = document.activeElement?.closest?.("#patient-rows button");
  const keep = focused && { id: focused.dataset.id, action: focused.dataset.action };
  const rows = visiblePatients();
  const now = Date.now();
  $("#patient-rows").replaceChildren(...rows.map((patient) => patientRow(patient, now)));
  $("#empty").hidden = rows.length > 0;
  $("#count").textContent = `(${rows.length}${rows.length === ward.patients.size ? "" : ` of ${ward.patients.size}`})`;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const active = th.dataset.sort === view.sort;
    th.setAttribute("aria-sort", active ? view.direction : "none");
    th.querySelector(".arrow").textContent = active ? (view.direction === "ascending" ? "▲" : "▼") : "";
  }
  if (keep) (document.querySelector(`#patient-rows button[data-id="${keep.id}"][data-action="${keep.action}"]`) ?? $("#search")).focus();
}

// --- dialogs ---------------------------------------------------------------------------------

let opener = null;
let editing = null;

function openDialog(dialog, trigger) {
  opener = trigger;
  clearErrors(dialog.querySelector("form"));
  dialog.showModal();
}

function closeDialog(dialog) {
  dialog.close();
}

function restoreFocus() { // back to the button that opened the dialog (rows are redrawn), else the search box
  const again = opener && document.querySelector(
    `#patient-rows button[data-id="${opener.dataset.id}"][data-action="${opener.dataset.action}"]`);
  (again ?? $("#search")).focus();
  opener = null;
}

function startEdit(patient, trigger) {
  editing = patient;
  $("#edit-first_name").value = patient.first_name;
  $("#edit-last_name").value = patient.last_name;
  $("#edit-admission_date").value = toLocalInput(patient.admission_date);
  openDialog($("#edit-dialog"), trigger);
  $("#edit-first_name").focus();
}

function startDischarge(patient, trigger) {
  editing = patient;
  $("#discharge-text").textContent = `Discharge ${fullName(patient)} now? They leave the list of current inpatients.`;
  openDialog($("#discharge-dialog"), trigger);
}

async function saveEdit(event) {
  event.preventDefault();
  const form = event.target, patient = editing;
  const data = {};
  for (const field of ["first_name", "last_name"]) {
    if (form.elements[field].value !== patient[field]) data[field] = form.elements[field].value;
  }
  const admitted = form.elements.admission_date.value;
  if (admitted !== toLocalInput(patient.admission_date)) data.admission_date = admitted ? fromLocalInput(admitted) : null;
  const reply = await send(form, "edit", "patients", "patch", { pk: patient.id, data });
  if (!reply) return;
  ward.applyPatient("update", reply.data);
  render();
  closeDialog($("#edit-dialog"));
  announce(`Saved ${fullName(reply.data)}.`);
}

async function discharge(event) {
  event.preventDefault();
  const patient = editing;
  const reply = await send(event.target, "discharge", "patients", "patch",
    { pk: patient.id, data: { dismissal_date: new Date().toISOString() } });
  if (!reply) return;
  opener = null; // its row is gone
  ward.applyPatient("update", reply.data);
  render();
  closeDialog($("#discharge-dialog"));
  announce(`Discharged ${fullName(reply.data)}.`);
}

// --- admit -----------------------------------------------------------------------------------

function resetAdmit() {
  const form = $("#admit");
  form.reset();
  clearErrors(form);
  form.elements.admission_date.value = toLocalInput(new Date().toISOString());
}

async function admit(event) {
  event.preventDefault();
  const form = event.target;
  const data = { first_name: form.elements.first_name.value, last_name: form.elements.last_name.value };
  const admitted = fromLocalInput(form.elements.admission_date.value);
  if (admitted) data.admission_date = admitted;
  const reply = await send(form, "admit", "patients", "create", { data });
  if (!reply) return;
  ward.applyPatient("create", reply.data);
  render();
  resetAdmit();
  form.elements.first_name.focus();
  announce(`Admitted ${fullName(reply.data)}.`);
}

// --- signing in and out ----------------------------------------------------------------------

function showSignIn(message = "") {
  view.user = null;
  ward.clear();
  $("#ward").hidden = true;
  $("#account").hidden = true;
  $("#connection").hidden = true; // nothing is connected, or tried, until someone signs in
  $("#sign-in-section").hidden = false;
  clearErrors($("#sign-in"));
  $("#sign-in-error").textContent = message;
  $("#sign-in-username").focus();
}

function showWard(user) {
  view.user = user;
  $("#sign-in-section").hidden = true;
  $("#ward").hidden = false;
  $("#account").hidden = false;
  $("#connection").hidden = false;
  $("#whoami").textContent = `Signed in as ${user.username} (${user.role})`;
  $("#admit-section").hidden = user.role !== "editor";
  resetAdmit();
  render();
  connection.start();
  $("#main").focus();
}

async function postJson(url, body) {
  const response = await fetch(url, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const { status, body } = await postJson("/api/auth/login/", { username: form.elements.username.value, password: form.elements.password.value });
    if (status === 200) { form.reset(); clearErrors(form); showWard(body); return; }
    showErrors(form, "sign-in", body && body.detail ? [body.detail] : [body]);
  } catch {
    showErrors(form, "sign-in", ["The server cannot be reached; try again."]);
  }
}

async function signOut() {
  connection.stop();
  try { await postJson("/api/auth/logout/"); } catch { /* signed out locally anyway */ }
  showSignIn("You have signed out.");
}

async function start() {
  try {
    const response = await fetch("/api/auth/me/", { credentials: "same-origin" });
    if (response.ok) { showWard(await response.json()); return; }
    showSignIn();
  } catch {
    showSignIn("The server cannot be reached; reload the page to try again.");
  }
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  $("#sign-in").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#admit").addEventListener("submit", admit);
  $("#admit").addEventListener("keydown", (event) => { if (event.key === "Escape") resetAdmit(); });
  $("#edit").addEventListener("submit", saveEdit);
  $("#discharge").addEventListener("submit", discharge);
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", restoreFocus);
    dialog.querySelector("[data-close]").addEventListener("click", () => closeDialog(dialog));
  }
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
      const line = document.getElementById(`${event.target.id}-error`);
      if (line) line.textContent = "";
    });
  }
  $("#search").addEventListener("input", (event) => { view.search = event.target.value; render(); });
  for (const button of document.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      view.direction = view.sort === key && view.direction === "ascending" ? "descending" : "ascending";
      view.sort = key;
      render();
    });
  }
  $("#patient-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const patient = button && ward.patients.get(Number(button.dataset.id));
    if (!patient) return;
    (button.dataset.action === "edit" ? startEdit : startDischarge)(patient, button);
  });
}

wire();
setInterval(render, 60_000); // readings turn stale as time passes, with no push to say so
start();
