// One patient's row of the ward table: name, admission, NEWS2 in colour and words, each vital with
// its own time, stale mark and 24-hour sparkline, and (on the desk, for editors) the row's actions.
import { element } from "./forms.js";
import { sparkline } from "./spark.js";

// Shown in this order; blood pressure (systolic_bp, diastolic_bp) goes after the heart rate.
const VITAL_LABELS = [["heart_rate", "HR", "Heart rate"], ["spo2", "SpO₂", "Oxygen saturation"],
  ["supplemental_oxygen", "O₂", "Supplemental oxygen"], ["resp_rate", "RR", "Respiratory rate"],
  ["temperature", "Temp", "Temperature"], ["consciousness", "ACVPU", "Consciousness (ACVPU)"]];
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

function readingText(kind, short, vital) {
  if (kind === "supplemental_oxygen") return vital.value > 0 ? `O₂ ${vital.value} ${vital.unit}` : "Air (no O₂)";
  if (kind === "consciousness") return `ACVPU ${ACVPU[vital.value]?.[0] ?? vital.value}`;
  return `${short} ${vital.value} ${vital.unit}`;
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

function bloodPressure(kinds, table) {
  const systolic = kinds.get("systolic_bp"), diastolic = kinds.get("diastolic_bp");
  if (systolic && diastolic && systolic.measured_at === diastolic.measured_at) {
    return [reading("Blood pressure", `BP ${systolic.value}/${diastolic.value} ${systolic.unit}`, systolic, table)];
  }
  return [ // measured apart (or only one of them): each with its own time
    ...(systolic ? [reading("Systolic blood pressure", `BP ${systolic.value}/– ${systolic.unit}`, systolic, table)] : []),
    ...(diastolic ? [reading("Diastolic blood pressure", `BP –/${diastolic.value} ${diastolic.unit}`, diastolic, table)] : []),
  ];
}

function vitalsCell(kinds, table) {
  if (!kinds || kinds.size === 0) return element("td", { class: "muted", text: table.hasVitals ? "No vitals yet" : "—" });
  const parts = [];
  for (const [kind, short, long] of VITAL_LABELS) {
    const vital = kinds.get(kind);
    if (vital) parts.push(reading(kind === "consciousness" ? ACVPU[vital.value]?.[1] ?? long : long,
      readingText(kind, short, vital), vital, table));
    if (kind === "heart_rate") parts.push(...bloodPressure(kinds, table));
  }
  return element("td", {}, element("div", { class: "vitals" }, ...parts));
}

// NEWS2 by colour and in words, with the chart's response; incomplete names what is missing or stale.
function news2Cell(score) {
  return element("td", { class: "news2", "data-band": score.band, "data-complete": String(score.complete) },
    element("span", { class: "badge", text: score.text }),
    element("span", { class: "response", text: score.response }));
}

function actionButton(action, patient, text, style, label = `${text} ${fullName(patient)}`) {
  return element("button", { type: "button", class: style, "data-action": action, "data-id": patient.id,
    "aria-label": label, text });
}

// table: {now, staleMs, hasVitals, editable, latest (kind -> vital), history (kind -> points)}; score: news2().
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
    news2Cell(score), vitalsCell(table.latest, table), actions);
}
