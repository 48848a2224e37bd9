// One multiplexed /ws/ socket that reconnects with backoff: requests get promises, pushes a callback.

const MAX_DELAY_MS = 5000;
// While the page is open it asks the server who is signed in this often; each answer slides the
// login session (server/accounts/sessions.py), so a wall display stays signed in while it is shown.
const RENEW_SESSION_MS = 60 * 60 * 1000;

export class Connection {
  // onStatus(state): "connecting" | "live" | "reconnecting" | "offline" (the page picks the words);
  // onOpen(): (re)load and (re)subscribe; onPush(stream, payload); onAuthLost(): show the sign-in.
  constructor({ onStatus, onOpen, onPush, onAuthLost }) {
    Object.assign(this, { onStatus, onOpen, onPush, onAuthLost });
    this.ws = null;
    this.pending = new Map(); // request_id -> {action, resolve, reject}
    this.sequence = 0;
    this.failures = 0;
    this.stopped = true;
    this.timer = null;
    this.renewal = null;
    this.lastHeard = null; // Date.now() of the last frame from the server: what the data is as of
    window.addEventListener("offline", () => { if (!this.stopped) this.onStatus("offline"); });
    // Back online: a socket that looks open may be dead (or the pill was left at "Offline" while it
    // stayed up), so connect afresh; the subscriptions resume with `since`, nothing is missed.
    window.addEventListener("online", () => { if (!this.stopped) this.reconnectNow(); });
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    clearInterval(this.renewal);
    this.renewal = setInterval(() => this.checkSession(), RENEW_SESSION_MS);
    this.open("connecting");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.renewal);
    if (this.ws) this.ws.close(1000, "Signed out");
    this.ws = null;
    this.onStatus("offline");
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  reconnectNow() {
    clearTimeout(this.timer);
    const old = this.ws;
    this.ws = null; // its close event is then ignored (closed() checks), and its requests fail now
    this.rejectPending();
    if (old) old.close(1000, "Reconnecting");
    this.open("reconnecting");
  }

  rejectPending() {
    for (const { reject } of this.pending.values()) reject(new Error("disconnected"));
    this.pending.clear();
  }

  open(state) {
    this.onStatus(navigator.onLine === false ? "offline" : state);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/`);
    this.ws = ws;
    ws.addEventListener("open", () => this.opened(ws));
    ws.addEventListener("message", (event) => this.received(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event.code));
  }

  async opened(ws) {
    try {
      await this.onOpen();
      if (this.ws === ws) this.failures = 0;
    } catch (error) {
      console.warn("resync failed, reconnecting", error);
      if (this.ws === ws) ws.close(4000, "Resync failed");
    }
  }

  closed(ws, code) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.rejectPending();
    if (this.stopped) return;
    if (code === 4401) { this.authLost(); return; }
    this.failures += 1;
    this.onStatus(navigator.onLine === false ? "offline" : "reconnecting");
    // A refused handshake (401) looks like any other close to a page: ask the server who we are.
    if (this.failures >= 2) this.checkSession();
    const delay = Math.min(MAX_DELAY_MS, 250 * 2 ** this.failures) * (0.75 + Math.random() / 4);
    this.timer = setTimeout(() => { if (!this.stopped) this.open("reconnecting"); }, delay);
  }

  async checkSession() {
    try {
      const response = await fetch("/api/auth/me/", { credentials: "same-origin" });
      if (response.status === 401 && !this.stopped) this.authLost();
    } catch { /* the server is away: keep retrying */ }
  }

  authLost() {
    this.stop();
    this.onAuthLost();
  }

  received(text) {
    this.lastHeard = Date.now();
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    const payload = frame.payload || {};
    const waiting = this.pending.get(JSON.stringify(payload.request_id));
    if (waiting && waiting.action === payload.action) {
      this.pending.delete(JSON.stringify(payload.request_id));
      waiting.resolve(payload);
    } else if (frame.stream) {
      this.onPush(frame.stream, payload);
    }
  }

  // Send one action; resolves with the reply's envelope (whatever its status), rejects if the socket drops.
  request(stream, action, keys = {}) {
    if (!this.isOpen()) return Promise.reject(new Error("disconnected"));
    const requestId = keys.request_id ?? `r${++this.sequence}`;
    const payload = { action, ...keys, request_id: requestId };
    return new Promise((resolve, reject) => {
      this.pending.set(JSON.stringify(requestId), { action, resolve, reject });
      this.ws.send(JSON.stringify({ stream, payload }));
    });
  }
}
