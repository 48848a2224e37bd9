// The ward dashboard page: sign in, the live table of current inpatients with NEWS2, admit / edit / discharge.
import { STALE_AFTER_MS, news2 } from "./news2.js";
import { Connection } from "./socket.js";
import { Ward } from "./ward.js";
import { $, clearErrors, element, fromLocalInput, showErrors, toLocalInput } from "./forms.js";
import { VITALS, fullName, patientRow, when } from "./rows.js";
import { VitalsEntry } from "./entry.js";

// The wall view (?view=wall): large type, no forms, the sickest first; else the desk view.
const WALL = new URLSearchParams(location.search).get("view") === "wall";
document.documentElement.dataset.view = WALL ? "wall" : "desk";
const STATUS_TEXT = { connecting: "Connecting…", live: "Live", connected: "Connected (no live updates)",
  reconnecting: "Reconnecting…", offline: "Offline" };
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

// The wall shows everyone, the sickest first (then by name); the desk filters and sorts as asked.
function visiblePatients(scores) {
  const words = WALL ? [] : view.search.toLowerCase().split(/\s+/).filter(Boolean);
  const rows = [...ward.patients.values()].filter((patient) => {
    const name = `${patient.first_name} ${patient.last_name}`.toLowerCase();
    return words.every((word) => name.includes(word));
  });
  const byName = (a, b) => a.last_name.localeCompare(b.last_name) || a.first_name.localeCompare(b.first_name);
  if (WALL) return rows.sort((a, b) => scores.get(b.id).total - scores.get(a.id).total || byName(a, b) || a.id - b.id);
  const byAdmission = (a, b) => a.admission_date.localeCompare(b.admission_date);
  const compare = view.sort === "name" ? byName : byAdmission;
  rows.sort((a, b) => (compare(a, b) || a.id - b.id) * (view.direction === "ascending" ? 1 : -1));
  return rows;
}

// The tab says how many patients and the highest NEWS2, so a glance at a background tab is enough.
function showTitle(scores) {
  const totals = [...scores.values()].map((score) => score.total);
  const count = `${ward.patients.size} patient${ward.patients.size === 1 ? "" : "s"}`;
  document.title = view.user
    ? `${count} · highest NEWS2 ${totals.length ? Math.max(...totals) : "–"} · Ward dashboard` : "Ward dashboard";
}

function render() {
  const focused = document.activeElement?.closest?.("#patient-rows button");
  const keep = focused && { id: focused.dataset.id, action: focused.dataset.action };
  const now = Date.now();
  const scores = new Map([...ward.patients.keys()].map((id) =>
    [id, news2(ward.latest.get(id) ?? new Map(), { now, staleAfterMs: STALE_MS })]));
  const rows = visiblePatients(scores);
  const editable = !WALL && view.user?.role === "editor";
  $("#patient-rows").replaceChildren(...rows.map((patient) => patientRow(patient, scores.get(patient.id), {
    now, staleMs: STALE_MS, hasVitals: ward.hasVitals, editable, wall: WALL, latest: ward.latest.get(patient.id),
    history: ward.history.get(patient.id) })));
  $("#empty").hidden = rows.length > 0;
  $("#count").textContent = `(${rows.length}${rows.length === ward.patients.size ? "" : ` of ${ward.patients.size}`})`;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const active = th.dataset.sort === view.sort;
    th.setAttribute("aria-sort", active ? view.direction : "none");
    th.querySelector(".arrow").textContent = active ? (view.direction === "ascending" ? "▲" : "▼") : "";
  }
  showTitle(scores);
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

function startVitals(patient, trigger) {
  entry.reset(patient);
  $("#vitals-title").textContent = `Record vitals: ${fullName(patient)}`;
  openDialog($("#vitals-dialog"), trigger);
  $("#vitals-heart_rate").focus();
}

function vitalsSaved(patient, saved, complete) {
  for (const vital of saved) ward.applyVital("create", vital);
  render();
  const count = `${saved.length} reading${saved.length === 1 ? "" : "s"}`;
  if (complete) { closeDialog($("#vitals-dialog")); announce(`Recorded ${count} for ${fullName(patient)}.`); }
  else if (saved.length) announce(`Recorded ${count} for ${fullName(patient)}; the others need correcting.`);
}

const entry = new VitalsEntry($("#vitals"), { request: (...args) => connection.request(...args), onSaved: vitalsSaved });

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
  $("#admit-section").hidden = WALL || user.role !== "editor";
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
    ({ edit: startEdit, discharge: startDischarge, vitals: startVitals })[button.dataset.action](patient, button);
  });
}

// The wall has nothing to type into or press: its order is fixed (NEWS2, then name); a column a vital.
function wallOnly() {
  $(".search").hidden = true;
  $("#vitals-col").replaceWith(...VITALS.map(([kind, short, unit, long]) => element("th", { scope: "col", "data-kind": kind },
    element("abbr", { title: long, text: short }), ...(unit === short ? [] : [" ", element("span", { class: "unit", text: unit })]))));
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.replaceChildren(th.querySelector("button").firstChild.textContent.trim());
    th.removeAttribute("data-sort");
    th.removeAttribute("aria-sort");
  }
  $("#news2-title").setAttribute("aria-sort", "descending");
  $("#patients caption").textContent = "Current inpatients, the highest NEWS2 first, then by name";
}

wire();
if (WALL) wallOnly();
setInterval(render, 60_000); // readings turn stale as time passes, with no push to say so
start();
