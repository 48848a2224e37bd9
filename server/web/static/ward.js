// The ward's data: current inpatients, their latest vitals and each vital's last 24 hours, kept
// current by list + subscribe (+ since).
import { DAY_MS } from "./spark.js";

export const INPATIENTS = { dismissal_date__isnull: true };
const SUBSCRIPTION = { patients: "dashboard:patients", vitals: "dashboard:vitals" };
const VITALS_PAGE = 1000; // the latest measurements are enough to show each patient's latest values

// Two pages at once: the latest readings (whatever their age) and the last 24 hours' (for the trends).
function listVitals(connection) {
  const lists = [{}, { filters: { measured_at__gte: new Date(Date.now() - DAY_MS).toISOString() } }].map((keys) =>
    connection.request("vitals", "list", { ...keys, ordering: "-measured_at", limit: VITALS_PAGE }));
  return Promise.all(lists).then((replies) => replies.find((reply) => reply.response_status !== 200) ??
    { response_status: 200, data: { results: replies.flatMap((reply) => reply.data.results) } });
}

export class Ward {
  constructor(onChange) {
    this.onChange = onChange;   // called after every change of the data
    this.patients = new Map();  // id -> patient
    this.latest = new Map();    // patient id -> Map(kind -> vital)
    this.history = new Map();   // patient id -> Map(kind -> [{id, t, value}]) of the last 24 hours
    this.cursors = {};          // stream -> cursor of the last change seen
    this.live = false;          // the server pushes changes (subscribe is supported)
    this.hasVitals = false;
    this.buffering = {};        // stream -> pushes that arrived while a list was in flight
  }

  clear() {
    this.patients.clear();
    this.latest.clear();
    this.history.clear();
    this.cursors = {};
    this.onChange();
  }

  // After every (re)connect: resume where we were, or list again.
  async sync(connection) {
    this.connection = connection;
    const patientsLive = await this.syncStream(connection, "patients", INPATIENTS,
      () => connection.request("patients", "list", { filters: INPATIENTS, ordering: "id" }),
      (data) => this.loadPatients(data));
    this.live = patientsLive;
    this.hasVitals = await this.syncStream(connection, "vitals", undefined,
      () => listVitals(connection),
      (data) => this.loadVitals(data.results)).then(() => true, () => false);
    this.onChange();
    return this.live;
  }

  // Subscribe first and list second, so that no change falls between the two; pushes that arrive
  // while the list is in flight are applied on top of it. With a cursor, `since` replays instead.
  async syncStream(connection, stream, filters, list, load) {
    const keys = { request_id: SUBSCRIPTION[stream], ...(filters ? { filters } : {}) };
    if (this.cursors[stream]) {
      const resumed = await connection.request(stream, "subscribe", { ...keys, since: this.cursors[stream] });
      if (resumed.response_status === 201) return true; // the replay follows as pushes
      delete this.cursors[stream]; // 410 (expired), or a cursor this server does not know: list again
    }
    const subscribed = await connection.request(stream, "subscribe", keys);
    const live = subscribed.response_status === 201;
    if (live) this.cursors[stream] = subscribed.data.cursor;
    this.buffering[stream] = [];
    try {
      const reply = await list();
      if (reply.response_status !== 200) throw new Error(`${stream} list: ${reply.response_status}`);
      load(reply.data);
      for (const push of this.buffering[stream]) this.apply(stream, push);
    } finally {
      delete this.buffering[stream];
    }
    return live;
  }

  push(stream, payload) {
    if (payload.request_id !== SUBSCRIPTION[stream]) return;
    if (payload.response_status === 410) { // the server lost changes we had not seen: list again
      delete this.cursors[stream];
      this.sync(this.connection).catch(() => this.connection.ws?.close(4000, "Resync failed"));
      return;
    }
    if (payload.cursor) this.cursors[stream] = payload.cursor;
    if (this.buffering[stream]) this.buffering[stream].push(payload);
    else { this.apply(stream, payload); this.onChange(); }
  }

  apply(stream, payload) {
    if (stream === "patients") this.applyPatient(payload.action, payload.data);
    else if (stream === "vitals") this.applyVital(payload.action, payload.data);
  }

  loadPatients(list) {
    this.patients = new Map(list.map((patient) => [patient.id, patient]));
  }

  // Upsert a newer version; a row that left the filter (discharged) or was deleted goes away.
  applyPatient(action, data) {
    if (!data) return;
    const id = data.pk ?? data.id;
    if (action === "delete" || data.dismissal_date) { this.patients.delete(id); return; }
    const known = this.patients.get(id);
    if (known && known.updated_at > data.updated_at) return; // an older version arriving late
    this.patients.set(id, data);
  }

  loadVitals(list) {
    this.latest = new Map();
    this.history = new Map();
    for (const vital of list) this.applyVital("create", vital);
  }

  applyVital(action, data) {
    if (!data) return;
    if (action === "delete") {
      for (const kinds of this.latest.values()) {
        for (const [kind, vital] of kinds) if (vital.id === data.pk) kinds.delete(kind);
      }
      for (const kinds of this.history.values()) {
        for (const [kind, points] of kinds) kinds.set(kind, points.filter((point) => point.id !== data.pk));
      }
      return;
    }
    this.remember(data);
    const kinds = this.latest.get(data.patient) ?? new Map();
    const known = kinds.get(data.kind);
    if (!known || known.id === data.id || known.measured_at <= data.measured_at) kinds.set(data.kind, data);
    this.latest.set(data.patient, kinds);
  }

  // A reading of the last 24 hours joins its trend (once, however often it is listed or pushed);
  // older points fall off as new ones come.
  remember(vital) {
    const t = Date.parse(vital.measured_at), since = Date.now() - DAY_MS;
    if (t <= since) return;
    const kinds = this.history.get(vital.patient) ?? new Map();
    const points = (kinds.get(vital.kind) ?? []).filter((point) => point.id !== vital.id && point.t > since);
    points.push({ id: vital.id, t, value: vital.value });
    kinds.set(vital.kind, points);
    this.history.set(vital.patient, kinds);
  }
}
