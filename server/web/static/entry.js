// Quick vitals entry: a full set of observations for one patient at once, one `create` per kind over
// /ws/, and the server's field errors next to their fields (a value's error beside its kind's input).
import { clearErrors, fromLocalInput, showErrors, toLocalInput } from "./forms.js";

// Each input's kind and the unit the server wants for it (schemas/vitals.py LIMITS).
const KINDS = [["heart_rate", "bpm"], ["spo2", "%"], ["supplemental_oxygen", "L/min"], ["resp_rate", "/min"],
  ["temperature", "°C"], ["systolic_bp", "mmHg"], ["diastolic_bp", "mmHg"], ["consciousness", "ACVPU"]];
const OFFLINE = "Not connected to the server; try again when the indicator says Live.";

export class VitalsEntry {
  // request(stream, action, keys) -> reply; onSaved(patient, saved vitals, all of them saved?)
  constructor(form, { request, onSaved }) {
    Object.assign(this, { form, request, onSaved, patient: null });
    form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    // Enter records the set from any field, the ACVPU list too (a select does not submit by itself).
    form.elements.consciousness.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); form.requestSubmit(); }
    });
  }

  reset(patient) {
    this.patient = patient;
    this.form.reset();
    clearErrors(this.form);
    this.form.elements.measured_at.value = toLocalInput(new Date().toISOString());
  }

  async submit() {
    const form = this.form, patient = this.patient;
    const measuredAt = fromLocalInput(form.elements.measured_at.value) ?? null;
    const readings = KINDS.filter(([kind]) => form.elements[kind].value.trim() !== "");
    if (readings.length === 0) { showErrors(form, "vitals", ["Enter at least one reading."]); return; }
    let replies;
    try {
      replies = await Promise.all(readings.map(([kind, unit]) => this.request("vitals", "create", {
        data: { patient: patient.id, kind, value: form.elements[kind].value.trim(), unit, measured_at: measuredAt } })));
    } catch {
      showErrors(form, "vitals", [OFFLINE]);
      return;
    }
    const saved = [], errors = {};
    replies.forEach((reply, index) => {
      const kind = readings[index][0];
      if (reply.response_status < 400) { saved.push(reply.data); form.elements[kind].value = ""; return; }
      const fields = typeof reply.errors[0] === "object" ? reply.errors[0] : { non_field_errors: reply.errors };
      for (const [field, messages] of Object.entries(fields)) {
        const key = field === "value" ? kind : field; // the same measured_at error comes once per kind
        errors[key] = [...new Set([...(errors[key] ?? []), ...[].concat(messages)])];
      }
    });
    const failed = Object.keys(errors).length > 0;
    this.onSaved(patient, saved, !failed);
    if (failed) showErrors(form, "vitals", [errors]);
  }
}
