// Waymark client core: watch backend pages over WAMP and get every re-fetched page pushed.
// It takes the Autobahn|JS library as a parameter, so the same code runs in Node (npm
// `autobahn`) and in browsers (the `autobahn-browser` build loaded with a <script> tag).

const DEFAULTS = {
  realm: 'waymark',
  serializer: 'json',          // 'json' or 'msgpack'
  joinTimeoutMs: 10000,        // a websocket that neither opens nor fails is retried after this
  retryInitialMs: 500,
  retryMaxMs: 15000,
  retryGrowth: 1.7,
  retryJitter: 0.2,
};

// A page as pushed by Waymark: the whole response, fetched with this client's token.
export class Page {
  constructor(topic, kwargs, details, receivedAt) {
    const k = kwargs || {};
    this.topic = topic;
    this.status = typeof k.status === 'number' ? k.status : 0;
    this.headers = k.headers && typeof k.headers === 'object' ? k.headers : {};
    this.body = decodeBody(k.body);
    this.error = typeof k.error === 'string' ? k.error : null;
    this.retained = Boolean(details && details.retained);
    this.receivedAt = receivedAt;
  }

  get ok() { return this.status >= 200 && this.status < 300; }

  text() {
    return typeof this.body === 'string' ? this.body : new TextDecoder().decode(this.body);
  }

  json() { return JSON.parse(this.text()); }
}

// Text bodies are strings. A body that is not UTF-8 arrives as msgpack bin (a Buffer or
// Uint8Array) or, in JSON, as the WAMP binary convention "\u0000" + base64.
function decodeBody(b) {
  if (b === undefined || b === null) return '';
  if (typeof b === 'string') {
    if (b.length > 0 && b.charCodeAt(0) === 0) return base64ToBytes(b.slice(1));
    return b;
  }
  if (b instanceof Uint8Array) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  return String(b);
}

function base64ToBytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function serializerFor(autobahn, name) {
  if (name === 'json') return new autobahn.serializer.JSONSerializer();
  if (name === 'msgpack') return new autobahn.serializer.MsgpackSerializer();
  throw new Error(`waymark: unknown serializer ${name}`);
}

// Errors from Autobahn are plain objects {error, args, kwargs}; make them Errors.
export class WaymarkError extends Error {
  constructor(message, { error = null, args = [], kwargs = {}, topic = null } = {}) {
    super(message);
    this.name = 'WaymarkError';
    this.error = error;
    this.args = args;
    this.kwargs = kwargs;
    this.topic = topic;
  }
}

function toError(e, topic) {
  if (e instanceof Error) return e;
  if (e && typeof e.error === 'string') {
    const detail = e.args && e.args.length ? `: ${e.args.join(' ')}` : '';
    return new WaymarkError(`${e.error}${detail}`, { ...e, topic });
  }
  return new WaymarkError(String(e), { topic });
}

// Returns a client. Options: url (ws://host:port/), token, realm, serializer,
// onStatus(status, info), onError(err), autobahn (required here; the package entry points
// fill it in), and the retry/timeout settings in DEFAULTS.
export function connectWith(autobahn, opts) {
  if (!autobahn || !autobahn.Connection) throw new Error('waymark: the autobahn library is required');
  if (!opts || typeof opts.url !== 'string') throw new Error('waymark: connect({url, token}) needs a url');
  return new Client(autobahn, { ...DEFAULTS, ...opts });
}

class Client {
  #ab;
  #o;
  #token;
  #conn = null;
  #session = null;
  #watches = new Set();
  #closed = false;
  #retryTimer = null;
  #joinTimer = null;
  #retryDelay;
  #attempt = 0;
  #openWaiters = [];
  #onFinalClose = null;

  constructor(autobahn, o) {
    this.#ab = autobahn;
    this.#o = o;
    this.#token = o.token == null ? null : String(o.token);
    this.#retryDelay = o.retryInitialMs;
    this.status = 'connecting';
    this.#open();
  }

  // Watches path: onPage(page) runs with the current page at once (snapshot: true, the
  // default) and with every page pushed after a bump. Returns a function that stops it.
  // opts.onError(err) hears why this watch failed (e.g. wamp.error.invalid_uri).
  watch(path, onPage, opts = {}) {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new TypeError('waymark: watch(path) needs a path starting with "/"');
    }
    if (typeof onPage !== 'function') throw new TypeError('waymark: watch(path, onPage) needs a function');
    const w = {
      path,
      onPage,
      onError: opts.onError || null,
      snapshot: opts.snapshot !== false,
      sub: null,          // the autobahn Subscription in the current session
      failed: null,       // a refusal by the router: not retried on reconnect
      stopped: false,
    };
    this.#watches.add(w);
    if (this.#session && this.#session.isOpen) this.#subscribe(this.#session, w, w.snapshot);
    return () => this.#unwatch(w);
  }

  // Replaces the token for the pages fetched from now on (waymark.auth.refresh) and for
  // later reconnects. Resolves once the router accepted it; while disconnected it resolves
  // at once and the next session authenticates with the new token.
  async setToken(newToken) {
    this.#token = newToken == null ? null : String(newToken);
    const s = this.#session;
    if (!s || !s.isOpen) return false;
    try {
      await s.call('waymark.auth.refresh', [this.#token]);
      return true;
    } catch (e) {
      const err = toError(e);
      this.#emitError(err);
      throw err;
    }
  }

  // Resolves when a session is open (now or after the next (re)connect).
  ready() {
    if (this.#session && this.#session.isOpen) return Promise.resolve();
    if (this.#closed) return Promise.reject(new WaymarkError('waymark: client closed'));
    return new Promise((resolve, reject) => this.#openWaiters.push({ resolve, reject }));
  }

  get isOpen() { return Boolean(this.#session && this.#session.isOpen); }

  get sessionId() { return this.#session ? this.#session.id : null; }

  // GOODBYE, no reconnect. Resolves when the websocket is closed.
  close() {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#joinTimer);
    for (const w of this.#openWaiters.splice(0)) w.reject(new WaymarkError('waymark: client closed'));
    const conn = this.#conn;
    if (!conn || !conn._transport) {
      this.#setStatus('closed', {});
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // A router that never answers GOODBYE must not hold the caller: drop the socket.
      const t = setTimeout(() => {
        if (conn._transport) conn._transport.close();
        resolve();
      }, 3000);
      this.#onFinalClose = () => { clearTimeout(t); resolve(); };
      try { conn.close(); } catch { this.#onFinalClose(); }
    });
  }

  #open() {
    const o = this.#o;
    // Autobahn's own reconnect is off: it gives up after a GOODBYE or ABORT from the
    // router (a restarting gateway says GOODBYE), and this client must not.
    const conn = new this.#ab.Connection({
      url: o.url,
      realm: o.realm,
      authmethods: ['ticket'],
      authid: o.authid,
      serializers: [serializerFor(this.#ab, o.serializer)],
      max_retries: 0,
      retry_if_unreachable: false,
      onchallenge: (session, method) => {
        if (method !== 'ticket') throw new Error(`waymark: unexpected auth challenge ${method}`);
        return this.#token === null ? '' : this.#token;
      },
    });
    this.#conn = conn;
    conn.onopen = (session) => this.#onOpen(conn, session);
    conn.onclose = (reason, details) => {
      this.#onClose(conn, reason, details);
      return true;
    };
    this.#attempt++;
    this.#setStatus(this.#attempt === 1 ? 'connecting' : 'reconnecting', { attempt: this.#attempt });
    clearTimeout(this.#joinTimer);
    this.#joinTimer = setTimeout(() => {
      // Neither open nor failed: close the transport so onclose schedules a retry.
      if (this.#conn === conn && !this.#session && conn._transport) conn._transport.close();
    }, o.joinTimeoutMs);
    try {
      conn.open();
    } catch (e) {
      this.#emitError(toError(e));
      this.#scheduleRetry();
    }
  }

  #onOpen(conn, session) {
    if (conn !== this.#conn) return;
    clearTimeout(this.#joinTimer);
    this.#session = session;
    this.#retryDelay = this.#o.retryInitialMs;
    const reconnect = this.#attempt > 1;
    this.#setStatus('open', { sessionId: session.id, reconnect });
    for (const w of this.#openWaiters.splice(0)) w.resolve();
    // After a gap every watch fetches the current page again (get_retained), so an update
    // made while the client was away is not missed.
    for (const w of this.#watches) {
      w.sub = null;
      if (!w.failed) this.#subscribe(session, w, reconnect || w.snapshot);
    }
  }

  #onClose(conn, reason, details) {
    if (conn !== this.#conn) return;
    clearTimeout(this.#joinTimer);
    this.#session = null;
    for (const w of this.#watches) w.sub = null;
    const info = { reason, detail: details && details.reason, message: details && details.message };
    if (this.#closed) {
      this.#setStatus('closed', info);
      if (this.#onFinalClose) this.#onFinalClose();
      return;
    }
    if (details && details.reason && /no_such_realm|not_authorized|authentication_failed/.test(details.reason)) {
      this.#emitError(new WaymarkError(`waymark: session refused: ${details.reason}`, { error: details.reason }));
    }
    this.#scheduleRetry(info);
  }

  #scheduleRetry(info = {}) {
    if (this.#closed) return;
    const o = this.#o;
    const jitter = 1 + (Math.random() * 2 - 1) * o.retryJitter;
    const delay = Math.round(Math.min(this.#retryDelay, o.retryMaxMs) * jitter);
    this.#retryDelay = Math.min(this.#retryDelay * o.retryGrowth, o.retryMaxMs);
    this.#setStatus('disconnected', { ...info, retryInMs: delay });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
  }

  #subscribe(session, w, retained) {
    const options = retained ? { get_retained: true } : {};
    const handler = (args, kwargs, details) => {
      if (w.stopped) return;
      const page = new Page(w.path, kwargs, details, new Date());
      try {
        w.onPage(page);
      } catch (e) {
        this.#emitError(e);
      }
    };
    session.subscribe(w.path, handler, options).then((sub) => {
      if (w.stopped || session !== this.#session) {
        // Unwatched (or reconnected) while SUBSCRIBE was in flight.
        if (session.isOpen) session.unsubscribe(sub).catch(() => {});
        return;
      }
      w.sub = sub;
    }, (e) => {
      if (w.stopped || session !== this.#session) return;
      const err = toError(e, w.path);
      // A refusal by the router is final for this path; a lost session is not.
      if (err.error) w.failed = err;
      if (w.onError) {
        try { w.onError(err); } catch (e2) { this.#emitError(e2); }
      }
      this.#emitError(err);
    });
  }

  #unwatch(w) {
    if (w.stopped) return Promise.resolve();
    w.stopped = true;
    this.#watches.delete(w);
    const s = this.#session;
    const sub = w.sub;
    w.sub = null;
    if (!sub || !s || !s.isOpen) return Promise.resolve();
    return s.unsubscribe(sub).then(() => {}, () => {});
  }

  #setStatus(status, info) {
    this.status = status;
    if (this.#o.onStatus) {
      try { this.#o.onStatus(status, info); } catch (e) { this.#emitError(e); }
    }
  }

  #emitError(err) {
    if (this.#o.onError) {
      try { this.#o.onError(err); } catch { /* an error handler that throws has nowhere to go */ }
    }
  }
}
