// One patient's row of the ward table: name, admission, NEWS2 in colour and words, each vital with
// its own time, stale mark and 24-hour sparkline, and (on the desk, for editors) the row's actions.
import { element } from "./forms.js";
import { brief } from "./news2.js";
import { sparkline } from "./spark.js";

// Shown in this order, on the desk in one cell, on the wall a column each (the header carries the unit):
// [kind, short, unit, name]; the BP entry shows both of its kinds.
export const VITALS = [["heart_rate", "HR", "bpm", "Heart rate"], ["systolic_bp", "BP", "mmHg", "Blood pressure"],
  ["spo2", "SpO₂", "%", "Oxygen saturation"], ["supplemental_oxygen", "O₂", "L/min", "Supplemental oxygen"],
  ["resp_rate", "RR", "/min", "Respiratory rate"], ["temperature", "Temp", "°C", "Temperature"],
  ["consciousness", "ACVPU", "ACVPU", "Consciousness (ACVPU)"]];
export const ACVPU = [["A", "Alert"], ["C", "new Confusion"], ["V", "responds to Voice"], ["P", "responds to Pain"],
  ["U", "Unresponsive"]];
const TRENDED = new Set(["heart_rate", "spo2", "resp_rate", "temperature", "systolic_bp"]);
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const dayClockFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

export const fullName = (patient) => `${patient.first_name} ${patient.last_name}`;

export function when(iso, now) { // the time, with the date when it is not today
  const date = new Date(iso);
  const today = date.toDateString() === new Date(now).toDateString();
  return (today ? clockFormat : dayClockFormat).format(date);
}

// The desk names each vital and its unit; on the wall the column header does (unless a reading's unit differs).
function readingText(kind, short, vital, unit) {
  const desk = unit === undefined, value = unit === vital.unit ? `${vital.value}` : `${vital.value} ${vital.unit}`;
  if (kind === "supplemental_oxygen") return vital.value > 0 ? `${desk ? "O₂ " : ""}${value}` : desk ? "Air (no O₂)" : "Air";
  if (kind === "consciousness") return `${desk ? "ACVPU " : ""}${ACVPU[vital.value]?.[0] ?? vital.value}`;
  return desk ? `${short} ${value}` : value;
}

// One value with its own time; stale ones say so in words, not only by their style.
function reading(title, text, vital, table) {
  const stale = table.now - Date.parse(vital.measured_at) > table.staleMs;
  const trend = TRENDED.has(vital.kind) && sparkline(table.history?.get(vital.kind) ?? [], table.now, title);
  return element("span", { class: stale ? "vital stale" : "vital", title, "data-kind": vital.kind },
    element("span", { class: "reading", text }), " ",
    element("time", { datetime: vital.measured_at, text: when(vital.measured_at, table.now) }),
    ...(stale ? [" ", element("span", { class: "stale-tag", text: "stale" })] : []),
    ...(trend ? [" ", trend] : []));
}

function bloodPressure(kinds, table, unit) {
  const systolic = kinds.get("systolic_bp"), diastolic = kinds.get("diastolic_bp");
  const text = (sys, dia, vital) => `${unit === undefined ? "BP " : ""}${sys}/${dia}${unit === vital.unit ? "" : ` ${vital.unit}`}`;
  if (systolic && diastolic && systolic.measured_at === diastolic.measured_at) {
    return [reading("Blood pressure", text(systolic.value, diastolic.value, systolic), systolic, table)];
  }
  return [ // measured apart (or only one of them): each with its own time
    ...(systolic ? [reading("Systolic blood pressure", text(systolic.value, "–", systolic), systolic, table)] : []),
    ...(diastolic ? [reading("Diastolic blood pressure", text("–", diastolic.value, diastolic), diastolic, table)] : []),
  ];
}

// The readings of one kind (blood pressure: both of its kinds), with the wall's column unit if any.
function readingsOf(kind, short, long, kinds, table, unit) {
  if (kind === "systolic_bp") return bloodPressure(kinds, table, unit);
  const vital = kinds.get(kind);
  return vital ? [reading(kind === "consciousness" ? ACVPU[vital.value]?.[1] ?? long : long,
    readingText(kind, short, vital, unit), vital, table)] : [];
}

function vitalsCell(kinds, table) {
  if (!kinds || kinds.size === 0) return element("td", { class: "muted", text: table.hasVitals ? "No vitals yet" : "—" });
  const parts = VITALS.flatMap(([kind, short, , long]) => readingsOf(kind, short, long, kinds, table));
  return element("td", {}, element("div", { class: "vitals" }, ...parts));
}

// The wall: a column a vital, so values line up down the ward; a dash where there is no reading.
function wallCells(kinds, table) {
  if (!kinds || kinds.size === 0) {
    return [element("td", { class: "muted", colspan: VITALS.length, text: table.hasVitals ? "No vitals yet" : "—" })];
  }
  return VITALS.map(([kind, short, unit, long]) => {
    const parts = readingsOf(kind, short, long, kinds, table, unit);
    return parts.length ? element("td", { class: "vital-cell" }, ...parts) : element("td", { class: "muted", text: "—" });
  });
}

// NEWS2 by colour and in words, with the chart's response; incomplete names what is missing or stale,
// except on the wall, where its columns show that (a dash, "stale") and the badge stays short.
function news2Cell(score, wall) {
  const text = wall ? brief(score.total, score.band, score.complete) : score.text;
  return element("td", { class: "news2", "data-band": score.band, "data-complete": String(score.complete) },
    element("span", { class: "badge", text }),
    element("span", { class: "response", text: score.response }));
}

function actionButton(action, patient, text, style, label = `${text} ${fullName(patient)}`) {
  return element("button", { type: "button", class: style, "data-action": action, "data-id": patient.id,
    "aria-label": label, text });
}

// table: {now, staleMs, hasVitals, editable, wall, latest (kind -> vital), history (kind -> points)}; score: news2().
export function patientRow(patient, score, table) {
  const actions = element("td", { class: "row-actions" });
  if (table.editable) {
    actions.append(actionButton("vitals", patient, "Record vitals", "secondary", `Record vitals for ${fullName(patient)}`),
      actionButton("edit", patient, "Edit", "secondary"), actionButton("discharge", patient, "Discharge", "danger"));
  }
  return element("tr", { "data-id": patient.id },
    element("th", { scope: "row", text: `${patient.last_name}, ${patient.first_name}` }),
    element("td", { class: "admitted" }, element("time", { datetime: patient.admission_date,
      text: timeFormat.format(new Date(patient.admission_date)) })),
    news2Cell(score, table.wall), ...(table.wall ? wallCells(table.latest, table) : [vitalsCell(table.latest, table)]), actions);
}
