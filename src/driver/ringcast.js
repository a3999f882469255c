// ringcast.js: the browser client of ringcast's `/ws` protocol (docs/protocol.md), served by the
// server at GET /ringcast.js. An ES module with no dependencies and no build step:
//
//   import { Ringcast } from "/ringcast.js";
//   const rc = new Ringcast("ws://127.0.0.1:8080/ws", { token: () => fetchToken() });
//   rc.addEventListener("message", (e) => console.log(e.detail.room, e.detail.payload));
//   await rc.join("lobby", { name: "ann" });
//   await rc.publish("lobby", { text: "hi" });     // resolves with { offset, epoch }
//
// What it guarantees to the application, on top of the server's guarantees:
// - Reconnects forever (unless told a fatal answer) with exponential backoff and full jitter:
//   delay = random(0, min(cap, base * 2^attempt)), base 500 ms, cap 30 s; the attempt count resets
//   once a connection has stayed up for `stableAfter` ms. A close with 1013 ("try again later")
//   waits at least `retryLaterMs`.
// - Rooms joined (even while offline) are joined again after every reconnect with
//   `since: {offset, epoch}` of the last message seen, so each room's messages reach the
//   application exactly once and in offset order. When the server cannot replay the gap
//   (`recovered: false`), a `recovered` event with `recovered: false` tells the application to
//   reload that room's state; nothing is presented as whole that is not.
// - A gap in offsets on a live connection (the server's `drop` backpressure policy skipped
//   messages) is filled from the room's history, or reported the same way.
// - `publish` gives every message a `msg_id` and re-sends it until the server's reply arrives,
//   across reconnects; the server keeps the first and answers retries with the original offset:
//   exactly once into the room. While offline, publishes wait in a bounded queue (`maxQueue`);
//   past it `publish` rejects at once, never drops silently.
// - User messages (`send` with `to_user`) that ask for an ack are acknowledged once every
//   `user_message` listener has run (or by the application with `ack()` when `autoAck` is false);
//   redelivered duplicates are filtered by their `msg_id`.
// - Liveness: a connection that hears nothing for `livenessMs` (it asks the server for `stats`
//   every `livenessMs / 2` when otherwise quiet) is declared dead and replaced: a half-open TCP
//   connection is detected, not waited out.
//
// Events (each a CustomEvent whose `detail` is described): `connected` {conn, user},
// `disconnected` {code, reason, delay}, `message` {room, offset, epoch, from, user, ts, payload},
// `user_message` {msg_id, from, user, ts, payload, redelivered}, `joined`/`left` {room, conn,
// user, name}, `presence` {room, members}, `recovered` {room, recovered, offset, epoch},
// `delivered` {msg_id, to_user}, `status` {online}, `error` {code, message, fatal}.

const DEFAULTS = {
  token: null,            // a string, or a function returning a string or a Promise of one
  backoffBase: 500,       // ms
  backoffCap: 30000,      // ms
  stableAfter: 10000,     // ms a connection must last before the backoff resets
  retryLaterMs: 5000,     // least wait after a 1013 close
  maxQueue: 1000,         // publishes and sends waiting while offline (or unanswered)
  livenessMs: 45000,      // silence after which the connection is declared dead
  autoAck: true,          // ack user messages once the listeners have run
  dedupWindow: 10000,     // user message ids remembered to drop redeliveries
  WebSocket: globalThis.WebSocket,
};

// 4001: the token expired. Reconnecting helps only with a fresh token, i.e. when `token` is a
// function; with a fixed token the client gives up and says why.
const CLOSE_TOKEN_EXPIRED = 4001;
// 1013: "try again later".
const CLOSE_TRY_AGAIN_LATER = 1013;

export class Ringcast extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.ws = null;
    this.conn = null;
    this.user = null;
    this.online = false;
    this.stopped = false;
    this.attempt = 0;
    this.nextId = 0;
    this.requests = new Map();   // id -> {envelope, resolve, reject, retry}
    this.rooms = new Map();      // room -> {opts, offset, epoch, joined, buffer, filling}
    this.seenUserMessages = new Map(); // msg_id -> time seen
    this.reconnectTimer = null;
    this.livenessTimer = null;
    this.lastHeard = 0;
    this.connectedAt = 0;
    this.connect();
  }

  // --- public API ------------------------------------------------------------------------------

  /// Joins `room` (now, or as soon as the connection is up) and keeps it joined across
  /// reconnects. Resolves with the server's reply ({offset, epoch, recovered?}).
  join(room, { name = undefined, presence = true, since = undefined } = {}) {
    if (this.rooms.has(room)) return this.rooms.get(room).joined;
    const state = {
      opts: { name, presence },
      offset: since ? since.offset : null,
      epoch: since ? since.epoch : null,
      live: false,         // a join reply arrived on the current connection
      joining: false,      // a join request is out on the current connection
      buffer: [],          // messages that arrived before the join reply on this connection
      filling: null,       // messages held while a history request fills a live gap
    };
    state.joined = new Promise((resolve, reject) => { state.settle = { resolve, reject }; });
    this.rooms.set(room, state);
    if (this.online) this._join(room, state);
    return state.joined;
  }

  /// Leaves `room`; no more of its messages reach the application.
  leave(room) {
    if (!this.rooms.delete(room)) return Promise.resolve();
    return this._request({ type: "leave", room }, { retry: "never" }).catch(() => {});
  }

  /// Publishes `payload` to `room` exactly once (retried with the same msg_id until answered).
  /// Resolves with {offset, epoch}; rejects at once when the offline queue is full, and with the
  /// server's error code when the server refuses the message.
  publish(room, payload, { echo = true } = {}) {
    const envelope = { type: "publish", room, payload, msg_id: this._msgId() };
    if (!echo) envelope.echo = false;
    return this._request(envelope, { retry: "always", queued: true });
  }

  /// Sends `payload` to every connection of user `toUser` (kept in their inbox while offline).
  /// With `ack`, the server redelivers until a connection of theirs acknowledges it; with
  /// `receipt`, a `delivered` event follows. Resolves with {msg_id}.
  send(toUser, payload, { ack = false, receipt = false } = {}) {
    const envelope = { type: "send", to_user: toUser, payload };
    if (ack) envelope.ack = true;
    if (receipt) envelope.receipt = true;
    return this._request(envelope, { retry: "unsent", queued: true });
  }

  /// Acknowledges user message `msgId` (only needed with `autoAck: false`).
  ack(msgId) {
    return this._request({ type: "ack", id: msgId }, { retry: "always", ownId: true });
  }

  /// The room's members across the server.
  presence(room) {
    return this._request({ type: "presence", room }, { retry: "always" });
  }

  /// The room's stored messages: the last `limit`, or those after `since`.
  history(room, { limit = undefined, since = undefined } = {}) {
    const envelope = { type: "history", room };
    if (limit !== undefined) envelope.limit = limit;
    if (since !== undefined) envelope.since = since;
    return this._request(envelope, { retry: "always" });
  }

  /// Server-wide figures: {connections, messages_in, messages_out}.
  stats() {
    return this._request({ type: "stats" }, { retry: "never" });
  }

  /// The last position seen in `room` ({offset, epoch}), for resuming in another session.
  position(room) {
    const state = this.rooms.get(room);
    return state && state.epoch !== null ? { offset: state.offset, epoch: state.epoch } : null;
  }

  /// Publishes and sends not yet answered by the server.
  get pending() {
    let n = 0;
    for (const r of this.requests.values()) if (r.queued) n += 1;
    return n;
  }

  /// Closes for good: no reconnect; unanswered requests reject.
  close() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    clearInterval(this.livenessTimer);
    if (this.ws) this.ws.close(1000, "client closed");
    for (const [id, r] of this.requests) {
      this.requests.delete(id);
      r.reject(new RingcastError("closed", "the client was closed"));
    }
  }

  // --- connection ------------------------------------------------------------------------------

  async connect() {
    if (this.stopped) return;
    let url = this.url;
    const token = await this._token().catch((e) => {
      this._fatal("token", "could not get a token: " + (e && e.message ? e.message : e));
      return undefined;
    });
    if (this.stopped) return;
    this.currentToken = token || null;
    if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    const ws = new this.options.WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.connectedAt = Date.now();
      this.lastHeard = Date.now();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let m;
      try { m = JSON.parse(event.data); } catch { return; }
      this._onEnvelope(m);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this._onClose(event.code, event.reason);
    };
  }

  _onClose(code, reason) {
    const wasOnline = this.online;
    this.ws = null;
    this.online = false;
    clearInterval(this.livenessTimer);
    clearTimeout(this.refreshTimer);
    for (const state of this.rooms.values()) {
      state.live = false;
      state.buffer = [];
      state.filling = null;
    }
    // Requests that must not be repeated on another connection fail now; the rest wait. A `send`
    // already on the wire is not repeated (the server would take it twice): it fails as
    // `disconnected`, and the application decides.
    for (const [id, r] of this.requests) {
      if (r.retry === "never" || (r.retry === "unsent" && r.sentOn)) {
        this.requests.delete(id);
        r.reject(new RingcastError("disconnected", "the connection closed before the reply"));
      }
    }
    if (wasOnline) this._emit("status", { online: false });
    if (this.stopped) return;
    if (code === CLOSE_TOKEN_EXPIRED && typeof this.options.token !== "function") {
      this._fatal("token_expired", `the server closed the connection: ${code} ${reason} ` +
        "(give `token` as a function so a fresh token can be fetched)");
      return;
    }
    if (this.connectedAt && Date.now() - this.connectedAt >= this.options.stableAfter) this.attempt = 0;
    this.connectedAt = 0;
    const ceiling = Math.min(this.options.backoffCap, this.options.backoffBase * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    let delay = Math.random() * ceiling;
    if (code === CLOSE_TRY_AGAIN_LATER) delay = Math.max(delay, this.options.retryLaterMs);
    this._emit("disconnected", { code, reason, delay: Math.round(delay) });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  _onWelcome(m) {
    this.conn = m.conn;
    this.user = m.user;
    this.online = true;
    this._emit("connected", { conn: m.conn, user: m.user });
    this._emit("status", { online: true });
    clearInterval(this.livenessTimer);
    const tick = Math.max(250, this.options.livenessMs / 2);
    this.livenessTimer = setInterval(() => this._checkLiveness(), tick);
    // Rooms first (re-joined with since), then every unanswered request in its original order.
    for (const [room, state] of this.rooms) this._join(room, state);
    for (const r of this.requests.values()) this._transmit(r);
    this._scheduleRefresh();
  }

  _checkLiveness() {
    if (!this.ws || !this.online) return;
    const silent = Date.now() - this.lastHeard;
    if (silent >= this.options.livenessMs) {
      // Half-open: nothing heard. Drop it and reconnect now (the close event may never come).
      const ws = this.ws;
      this.ws = null;
      try { ws.close(4000, "liveness timeout"); } catch { /* already closing */ }
      this._onClose(1006, "no data from the server for " + silent + " ms");
    } else if (silent >= this.options.livenessMs / 2) {
      this._send({ type: "stats" });
    }
  }

  // --- rooms -----------------------------------------------------------------------------------

  _join(room, state) {
    const envelope = { type: "join", room, presence: state.opts.presence };
    if (state.opts.name !== undefined) envelope.name = state.opts.name;
    if (state.epoch !== null) envelope.since = { offset: state.offset, epoch: state.epoch };
    state.joining = true;
    this._request(envelope, { retry: "never" }).then((reply) => {
      state.joining = false;
      if (this.rooms.get(room) !== state) return;
      const resumed = envelope.since !== undefined;
      if (resumed) {
        this._emit("recovered", { room, recovered: reply.recovered === true, offset: reply.offset, epoch: reply.epoch });
      }
      if (!resumed || reply.recovered !== true) {
        // A fresh start: everything up to the reply's offset is history, not news.
        state.offset = reply.offset;
        state.epoch = reply.epoch;
      }
      state.live = true;
      const early = state.buffer;
      state.buffer = [];
      for (const m of early) this._onRoomMessage(m);
      state.settle.resolve(reply);
    }, (err) => {
      state.joining = false;
      if (err.code === "disconnected") return; // joined again on the next connection
      if (this.rooms.get(room) === state) this.rooms.delete(room);
      state.settle.reject(err);
    });
  }

  _onRoomMessage(m) {
    const state = this.rooms.get(m.room);
    if (!state) return;
    if (!state.live) { state.buffer.push(m); return; }
    if (state.filling) { state.filling.push(m); return; }
    if (state.offset !== null && m.offset <= state.offset) return; // seen already
    if (state.offset !== null && m.offset > state.offset + 1) {
      this._fillGap(m.room, state, m);
      return;
    }
    this._deliver(m.room, state, m);
  }

  _deliver(room, state, m) {
    state.offset = m.offset;
    this._emit("message", { ...m, epoch: state.epoch });
  }

  _fillGap(room, state, first) {
    state.filling = [first];
    const since = { offset: state.offset, epoch: state.epoch };
    this._request({ type: "history", room, since }, { retry: "never" }).then((h) => {
      const queued = state.filling || [];
      state.filling = null;
      if (h.recovered) {
        for (const m of h.messages) if (m.offset > state.offset) this._deliver(room, state, m);
      } else {
        this._emit("recovered", { room, recovered: false, offset: h.offset, epoch: h.epoch });
        state.offset = queued[0].offset - 1;
        state.epoch = h.epoch;
      }
      for (const m of queued) this._onRoomMessage(m);
    }, () => {
      // Disconnected while filling: the re-join with since covers the gap.
      state.filling = null;
    });
  }

  // --- user messages ---------------------------------------------------------------------------

  _onUserMessage(m) {
    const now = Date.now();
    for (const [id, at] of this.seenUserMessages) {
      if (now - at < this.options.dedupWindow) break;
      this.seenUserMessages.delete(id);
    }
    const duplicate = this.seenUserMessages.has(m.msg_id);
    if (!duplicate) {
      this.seenUserMessages.set(m.msg_id, now);
      this._emit("user_message", m);
    }
    if (m.ack && (this.options.autoAck || duplicate)) this.ack(m.msg_id).catch(() => {});
  }

  // --- requests --------------------------------------------------------------------------------

  _request(envelope, { retry, queued = false, ownId = false }) {
    if (queued && this.pending >= this.options.maxQueue) {
      return Promise.reject(new RingcastError("queue_full",
        `${this.options.maxQueue} messages are already waiting for the server`));
    }
    return new Promise((resolve, reject) => {
      const id = ownId ? envelope.id : "c" + (++this.nextId);
      if (!ownId) envelope.id = id;
      // retry: "always" (sent again on every new connection until answered), "unsent" (sent
      // once; fails if the connection drops after that), "never" (fails with the connection).
      const r = { id, envelope, resolve, reject, retry, queued, sentOn: null };
      this.requests.set(id, r);
      if (this.online) this._transmit(r);
    });
  }

  _transmit(r) {
    if (r.sentOn === this.ws) return; // once per connection
    r.sentOn = this.ws;
    this._send(r.envelope);
  }

  _send(envelope) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(envelope));
  }

  _answer(m) {
    const r = this.requests.get(m.id);
    if (!r) return false;
    this.requests.delete(m.id);
    if (m.type === "reply" && m.ok === false) {
      r.reject(new RingcastError(m.error.code, m.error.message));
    } else {
      r.resolve(m);
    }
    return true;
  }

  _onEnvelope(m) {
    switch (m.type) {
      case "welcome": this._onWelcome(m); break;
      case "reply":
        if (!this._answer(m) && m.ok === false) {
          this._emit("error", { code: m.error.code, message: m.error.message, fatal: false });
        }
        break;
      case "history": this._answer(m); break;
      case "presence":
        this._answer(m);
        this._emit("presence", { room: m.room, members: m.members });
        break;
      case "stats": if (m.id) this._answer(m); break;
      case "message": this._onRoomMessage(m); break;
      case "user_message": this._onUserMessage(m); break;
      case "delivered": this._emit("delivered", m); break;
      case "direct": this._emit("direct", m); break;
      case "joined": case "left":
        if (this.rooms.has(m.room)) this._emit(m.type, m);
        break;
      default: break;
    }
  }

  // --- token refresh ---------------------------------------------------------------------------

  // With `token` as a function, a fresh token is fetched and sent as `refresh` 30 s before the
  // current one expires (or halfway, for short-lived tokens), so the server never closes with 4001.
  _scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (typeof this.options.token !== "function" || !this.currentToken) return;
    const exp = tokenExpiry(this.currentToken);
    if (exp === null) return;
    const left = exp * 1000 - Date.now();
    const wait = Math.max(0, Math.min(left - 30000, left / 2));
    this.refreshTimer = setTimeout(async () => {
      const ws = this.ws;
      let token;
      try { token = await this._token(); } catch { return; }
      if (!token || ws !== this.ws || !this.online) return;
      this.currentToken = token;
      this._request({ type: "refresh", token }, { retry: "never" }).then(
        () => this._scheduleRefresh(),
        (e) => this._emit("error", { code: e.code, message: e.message, fatal: false }));
    }, wait);
  }

  // --- helpers ---------------------------------------------------------------------------------

  async _token() {
    const t = this.options.token;
    return typeof t === "function" ? await t() : t;
  }

  _msgId() {
    const bytes = new Uint8Array(12);
    globalThis.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  _fatal(code, message) {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this._emit("error", { code, message, fatal: true });
    for (const [id, r] of this.requests) {
      this.requests.delete(id);
      r.reject(new RingcastError(code, message));
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/// A refusal by the server (its stable error `code`) or by the client (`queue_full`, `closed`,
/// `disconnected`).
export class RingcastError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/// The `exp` claim (seconds) of a JWT, or null when it has none or is not a JWT.
function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}
