// Shared by the bettor's page and the trading console: the REST client, the live socket
// (docs/websocket.md), DOM building without HTML strings, and odds/money formatting.
// Everything the engine sends is put on the page with textContent, never as markup.

/** Builds an element: h('button', {class: 'x', onclick: f}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** A fresh idempotency key for a bet, deposit or cash-out. */
export function newKey(prefix) {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** The session token of one page, kept in sessionStorage (never in a URL). */
export class Session {
  constructor(name) {
    this.key = `winzo.${name}.session`;
    try {
      const raw = sessionStorage.getItem(this.key);
      const s = raw ? JSON.parse(raw) : null;
      this.token = s?.token || null;
      this.user = s?.user || null;
    } catch {
      this.token = null;
      this.user = null;
    }
  }
  set(token, user) {
    this.token = token;
    this.user = user;
    sessionStorage.setItem(this.key, JSON.stringify({ token, user }));
  }
  clear() {
    this.token = null;
    this.user = null;
    sessionStorage.removeItem(this.key);
  }
}

/**
 * Calls the REST API. Answers {ok, status, data} where a refusal's data is the contract's
 * error object ({code, message, details}); a network failure is status 0, code `network`.
 */
export async function api(method, path, { body, token } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    return { ok: false, status: 0, data: { code: 'network', message: 'the engine cannot be reached' } };
  }
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) return { ok: true, status: res.status, data };
  const err = data?.error || { code: `http_${res.status}`, message: res.statusText || 'request failed' };
  return { ok: false, status: res.status, data: err };
}

/** The human text of a refusal. */
export function errorText(err) {
  if (!err) return 'request failed';
  return err.message ? `${err.message} (${err.code})` : err.code;
}

/**
 * The live socket: connects to /ws, authenticates in band (`auth` op), keeps a set of
 * topics subscribed, checks every topic's `seq` (a gap resubscribes the topic for a fresh
 * snapshot), pings, and reconnects with backoff, resubscribing everything from snapshots.
 * At most `loadsMax` subscriptions wait for their snapshot at once (the server's
 * `ws.snapshot_loads_per_connection_max`); `too_many_loads` puts a topic back in line.
 */
export class Live {
  constructor({ onSnapshot, onMessage, onState, token = null, loadsMax = 4 }) {
    this.onSnapshot = onSnapshot;
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.token = token;
    this.loadsMax = loadsMax;
    this.topics = new Set();
    this.seq = new Map();
    this.pending = new Map(); // id -> topic awaiting its snapshot
    this.queue = [];
    this.nextId = 1;
    this.ws = null;
    this.authId = null;
    this.held = false;
    this.backoff = 500;
    this.requests = new Map(); // id -> resolve (place_bet and other answered ops)
    this.state = 'connecting';
    this.connect();
    setInterval(() => this.heartbeat(), 10000);
  }

  setState(s) {
    this.state = s;
    document.documentElement.dataset.live = s;
    this.onState(s);
  }

  connect() {
    if (this.held) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    this.ws = ws;
    this.setState('connecting');
    ws.onopen = () => {
      this.backoff = 500;
      this.lastHeard = Date.now();
      // Everything from scratch: the snapshots replace what the page shows.
      this.seq.clear();
      this.pending.clear();
      this.queue = [...this.topics];
      this.authId = null;
      if (this.token) {
        // Topics wait for the answer: a staff-only topic needs the session first.
        this.authId = this.id();
        this.send({ op: 'auth', id: this.authId, token: this.token });
      }
      this.pump();
      this.setState('live');
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.receive(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const resolve of this.requests.values()) resolve({ type: 'error', code: 'network', message: 'connection lost' });
      this.requests.clear();
      this.setState(this.held ? 'paused' : 'reconnecting');
      if (!this.held) {
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 8000);
      }
    };
  }

  id() {
    return this.nextId++;
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  heartbeat() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - (this.lastHeard || 0) > 25000) {
      this.ws.close();
      return;
    }
    this.send({ op: 'ping', id: this.id() });
  }

  /** Sends queued subscriptions while fewer than `loadsMax` snapshots are loading. */
  pump() {
    if (this.authId !== null) return;
    while (this.queue.length && this.pending.size < this.loadsMax) {
      const topic = this.queue.shift();
      if (!this.topics.has(topic)) continue;
      const id = this.id();
      if (!this.send({ op: 'subscribe', id, topics: [topic] })) {
        this.queue.unshift(topic);
        return;
      }
      this.pending.set(id, topic);
    }
  }

  subscribe(topic) {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.queue.push(topic);
    this.pump();
  }

  unsubscribe(topic) {
    if (!this.topics.delete(topic)) return;
    this.seq.delete(topic);
    this.send({ op: 'unsubscribe', id: this.id(), topics: [topic] });
  }

  resubscribe(topic) {
    this.seq.delete(topic);
    if (!this.queue.includes(topic)) this.queue.push(topic);
    this.pump();
  }

  /** Authenticates the socket (or leaves the private channel with null). */
  authenticate(token) {
    this.token = token;
    if (this.ws) this.ws.close(); // reconnects: the new token is sent first, then the topics
  }

  /** Sends an op that is answered with its id (place_bet); resolves with the answer. */
  request(obj) {
    return new Promise((resolve) => {
      const id = this.id();
      if (!this.send({ ...obj, id })) {
        resolve({ type: 'error', code: 'network', message: 'not connected; retry in a moment' });
        return;
      }
      this.requests.set(id, resolve);
    });
  }

  receive(msg) {
    if (this.authId !== null && msg.id === this.authId) {
      this.authId = null;
      if (msg.type !== 'authenticated') {
        this.token = null;
        this.onMessage({ type: 'auth_failed', code: msg.code, message: msg.message });
      }
      this.pump();
      return;
    }
    if (msg.id !== undefined && this.requests.has(msg.id)) {
      const resolve = this.requests.get(msg.id);
      this.requests.delete(msg.id);
      resolve(msg);
      return;
    }
    if (msg.type === 'snapshot') {
      for (const [id, t] of this.pending) if (t === msg.topic || id === msg.id) this.pending.delete(id);
      if (!this.topics.has(msg.topic)) return;
      this.seq.set(msg.topic, msg.seq);
      this.onSnapshot(msg.topic, msg.data);
      this.pump();
      return;
    }
    if (msg.type === 'error') {
      const topic = this.pending.get(msg.id);
      if (topic !== undefined) {
        this.pending.delete(msg.id);
        if (msg.code === 'too_many_loads' || msg.code === 'unavailable') {
          setTimeout(() => this.resubscribe(topic), 300);
        } else {
          this.topics.delete(topic);
        }
        this.pump();
      }
      this.onMessage(msg);
      return;
    }
    if (msg.topic && msg.seq !== undefined && !msg.topic.startsWith('user:')) {
      const last = this.seq.get(msg.topic);
      if (last === undefined) return; // not live yet: its snapshot is coming
      if (msg.seq <= last) return;
      if (msg.seq !== last + 1) {
        this.resubscribe(msg.topic); // lost messages: a fresh snapshot
        return;
      }
      this.seq.set(msg.topic, msg.seq);
    }
    this.onMessage(msg);
  }

  /** Drops the connection and holds it down until `resume()` (tests, and a manual "pause"). */
  pause() {
    this.held = true;
    if (this.ws) this.ws.close();
    this.setState('paused');
  }

  resume() {
    this.held = false;
    if (!this.ws) this.connect();
  }
}

// ---- formatting ----

/** The odds of a selection in `format`, from a price carrying odds/american/fractional. */
export function showOdds(price, format) {
  if (!price) return '–';
  if (format === 'american' && price.american) return price.american;
  if (format === 'fractional' && price.fractional) return price.fractional;
  const d = Number(price.odds);
  return Number.isFinite(d) ? d.toFixed(2) : String(price.odds);
}

export function money(s, currency) {
  if (s === null || s === undefined || s === '') return '–';
  const n = Number(s);
  const txt = Number.isFinite(n) ? n.toFixed(2) : String(s);
  return currency ? `${txt} ${currency}` : txt;
}

/** Cents of a money string (exact arithmetic for the slip's estimates). */
export function cents(s) {
  const m = /^\s*(\d+)(?:\.(\d{0,2}))?\s*$/.exec(String(s ?? ''));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

export function fromCents(c) {
  return (c / 100).toFixed(2);
}

const STATUS_TEXT = {
  scheduled: 'Upcoming',
  live: 'Live',
  halftime: 'Half time',
  finished: 'Finished',
  postponed: 'Postponed',
  cancelled: 'Cancelled',
  suspended: 'Suspended',
};

export function statusText(s) {
  return STATUS_TEXT[s] || s || '';
}

export function isLive(s) {
  return s === 'live' || s === 'halftime';
}

export function kickoff(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' });
}

/** The book's margin of a market: sum of implied probabilities less one, in percent. */
export function margin(oddsList) {
  const ds = oddsList.map(Number).filter((d) => d > 1);
  if (!ds.length) return null;
  return (ds.reduce((a, d) => a + 1 / d, 0) - 1) * 100;
}

/** Briefly marks an element as changed (up or down), for price moves. */
export function flash(el, dir) {
  el.classList.remove('flash-up', 'flash-down');
  void el.offsetWidth; // restart the animation
  el.classList.add(dir > 0 ? 'flash-up' : 'flash-down');
  el.dataset.flashedAt = String(Date.now());
}

/** A status line that announces itself to screen readers. */
export function say(el, text, kind = 'ok') {
  el.textContent = text;
  el.dataset.kind = kind;
}
