// sipws.js: a SIP subscriber over the browser WebSocket (RFC 7118), just big enough for a BLF
// console: one SUBSCRIBE dialog per watched (extension, event package) (RFC 6665), NOTIFYs
// answered, refreshes before expiry, un-SUBSCRIBE on stop, CRLF keepalive (RFC 5626 §4.4.1),
// reconnect with jittered exponential back-off and fresh subscriptions after every reconnect.
//
// The console needs no REGISTER: the hub sends NOTIFYs back on the connection the SUBSCRIBE came
// in on, so the Contact host is a random *.invalid name (RFC 7118 §5.2).

import {
  buildRequest, buildResponse, intHeader, parse, parseCSeq, parseNameAddr,
  parseSubscriptionState, parseValueParams, randomToken, topViaBranch,
} from './sipmsg.js';

/** The event packages the console subscribes to for every watched extension. */
export const PACKAGES = Object.freeze([
  Object.freeze({ event: 'dialog', accept: 'application/dialog-info+xml' }), // RFC 4235
  Object.freeze({ event: 'presence', accept: 'application/pidf+xml' }),      // RFC 3856
]);

/**
 * The event packages of list mode: one RFC 5367 list subscription each for all the watched
 * extensions (RFC 4662 NOTIFYs, read with rlmi.js). message-summary (RFC 3842) gives the
 * voicemail count; a hub without it refuses that subscription alone.
 */
export const LIST_PACKAGES = Object.freeze([
  ...PACKAGES,
  Object.freeze({ event: 'message-summary', accept: 'application/simple-message-summary' }),
]);

const LIST_ACCEPT = 'multipart/related, application/rlmi+xml';

/**
 * The application/resource-lists+xml body (RFC 4826) of an RFC 5367 SUBSCRIBE listing these
 * extensions (user parts) of domain.
 */
export function resourceListsBody(exts, domain) {
  const esc = (s) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const entries = exts.map((x) => `<entry uri="${esc(`sip:${x}@${domain}`)}"/>`).join('\r\n');
  return '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
    `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>\r\n${entries}\r\n</list></resource-lists>\r\n`;
}

const TIMER_F = 32000;            // RFC 3261 §17.1.2.2: 64*T1, a non-INVITE transaction times out
const KEEPALIVE_INTERVAL = 30000; // RFC 5626 §4.4.1: CRLF ping, answered by a CRLF pong
const KEEPALIVE_TIMEOUT = 10000;  // no frame at all this long after a ping: the socket is dead
const STABLE_AFTER = 10000;       // a connection or subscription that lived this long resets back-off
const MAX_BACKOFF = 30000;

/**
 * Back-off before retry number attempt (0-based): 1 s, 2 s, 4 s ... capped at 30 s, each
 * jittered by ±25 % so that many consoles do not reconnect in lockstep after a hub restart.
 */
export function backoff(attempt, random = Math.random) {
  const base = Math.min(MAX_BACKOFF, 1000 * 2 ** Math.min(Math.max(attempt, 0), 5));
  return Math.min(MAX_BACKOFF, Math.round(base * (0.75 + random() * 0.5)));
}

/**
 * Milliseconds after which a subscription granted for expires seconds is refreshed
 * (RFC 6665 §4.1.2.2: before it expires). The margin leaves room for the minute-long timer
 * throttling browsers apply to hidden tabs.
 */
export function refreshDelay(expires) {
  const s = expires > 180 ? expires - 90 : expires * 0.7;
  return Math.max(1000, Math.round(s * 1000));
}

/**
 * How long to wait before subscribing again after Subscription-State: terminated
 * (RFC 6665 §4.1.3), or null when the subscriber should not retry. attempt counts the
 * terminations in a row.
 */
export function resubscribeDelay(reason, retryAfter, attempt, random = Math.random) {
  switch (reason) {
    case 'rejected':   // the subscription was refused: "SHOULD NOT attempt to re-subscribe"
    case 'noresource': // the resource does not exist: "SHOULD NOT attempt to re-subscribe"
    case 'invariant':  // the state will never change: "SHOULD NOT attempt to re-subscribe"
      return null;
  }
  if (retryAfter !== undefined) return retryAfter * 1000;
  if (reason === 'deactivated' || reason === 'timeout') {
    // "MAY re-subscribe immediately": at once the first time, then back off so that a notifier
    // that keeps ending subscriptions is not hammered.
    return attempt === 0 ? 0 : backoff(attempt - 1, random);
  }
  return backoff(attempt, random); // probation, giveup, no reason: "MAY retry later"
}

// 4xx answers worth retrying; others mean the request itself will not succeed (RFC 3261 §21.4).
const RETRYABLE_4XX = new Set([408, 429, 480, 481]);

/**
 * Subscriber keeps the SIP subscriptions of a set of watched extensions over one WebSocket.
 *
 * Events (CustomEvent, data in event.detail):
 * - 'status': {state, retryAt, reason}; state is 'connecting', 'connected', 'reconnecting'
 *   (retryAt: epoch ms of the next attempt) or 'stopped'.
 * - 'update': {ext, event, body, contentType, state, reason, retryAt}; body is the latest NOTIFY
 *   body, or null when there is no current state (not yet subscribed, terminated, socket down).
 *   state is 'subscribing', 'pending', 'active', 'retrying' (retryAt set), 'failed' or 'offline'.
 */
export class Subscriber extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url      ws: or wss: URL of the hub (the token travels in it)
   * @param {string} o.user     user part of the console's own AOR (the token's sub)
   * @param {string} o.domain   SIP domain of the AOR and of the watched extensions
   * Optional: displayName, expires (seconds asked for, default 600), userAgent, lists (one
   * RFC 5367 list subscription per package in LIST_PACKAGES for all extensions instead of one
   * subscription per extension and package; its 'update' events carry exts instead of ext and
   * the whole Content-Type in contentType), and for tests WebSocket, setTimeout, clearTimeout,
   * now, random.
   */
  constructor(o) {
    super();
    this.url = o.url;
    this.domain = o.domain;
    this.aor = `sip:${o.user}@${o.domain}`;
    this.displayName = o.displayName || 'presencehub console';
    this.expires = o.expires ?? 600;
    this.userAgent = o.userAgent || 'presencehub-console/1';
    this.lists = !!o.lists;
    this.secure = String(o.url).startsWith('wss:');
    this._WebSocket = o.WebSocket || globalThis.WebSocket;
    this._setTimeout = o.setTimeout || ((f, ms) => globalThis.setTimeout(f, ms));
    this._clearTimeout = o.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this._now = o.now || (() => Date.now());
    this._random = o.random || Math.random;

    this._state = 'stopped';
    this._ws = null;
    this._attempt = 0;         // reconnects in a row
    this._timers = {};         // connection-level timers by name
    this._slots = new Map();   // `${ext} ${event}` -> slot (one per watched extension and package)
    this._dialogs = new Map(); // Call-ID -> subscription dialog, also ones being un-subscribed
    this._transactions = new Map(); // Via branch -> {onResponse, timer}
    const host = `${randomToken(12)}.invalid`;
    this._viaHost = host;
    this._contact = `<sip:${randomToken(8)}@${host};transport=ws>`;
  }

  /** The connection state: 'stopped', 'connecting', 'connected' or 'reconnecting'. */
  get state() { return this._state; }

  /** Connects (if stopped) and subscribes to every watched extension. */
  start() {
    if (this._state !== 'stopped') return;
    this._attempt = 0;
    this._connect();
  }

  /**
   * Un-SUBSCRIBEs (Expires: 0) every subscription and closes the socket; synchronous, so that
   * it can run in a pagehide handler. start() connects again.
   */
  stop() {
    if (this._state === 'stopped') return;
    for (const d of [...this._dialogs.values()]) if (d.slot) this._unsubscribe(d); // not twice
    this._teardown('stopped');
  }

  /**
   * Refreshes the subscription of event now (RFC 6665 §4.1.2.2): a list subscription answers
   * with full state, the way back after a missed NOTIFY (RFC 4662 §5.2 version gap).
   */
  resync(event) {
    for (const slot of this._slots.values()) {
      if (slot.event === event && slot.dialog && slot.dialog.confirmed) this._refresh(slot.dialog);
    }
  }

  /** Reconnects now instead of waiting for the back-off to run out. */
  reconnectNow() {
    if (this._state !== 'reconnecting') return;
    this._attempt = 0;
    this._connect();
  }

  /** Sets the watched extensions (user parts); new ones are subscribed, dropped ones un-subscribed. */
  watch(exts) {
    const want = new Map();
    if (this.lists) {
      // An RFC 5367 list lives as long as its subscription: another set of extensions is a new
      // subscription (the key names them), the old one is un-subscribed.
      const list = [...exts];
      if (list.length) for (const p of LIST_PACKAGES) want.set(`*list ${p.event} ${list.join(',')}`, { ext: null, list, ...p });
    } else {
      for (const ext of exts) {
        for (const p of PACKAGES) want.set(`${ext} ${p.event}`, { ext, ...p });
      }
    }
    for (const [key, slot] of this._slots) {
      if (want.has(key)) continue;
      this._clear(slot, 'retryTimer');
      if (slot.dialog) this._unsubscribe(slot.dialog);
      this._slots.delete(key);
    }
    for (const [key, p] of want) {
      if (this._slots.has(key)) continue;
      const slot = { ...p, key, dialog: null, attempt: 0, retryTimer: null };
      this._slots.set(key, slot);
      if (this._state === 'connected') this._subscribe(slot, this.expires);
      else this._update(slot, null, 'offline');
    }
  }

  // ---- connection ----

  _connect() {
    this._clearAll(this._timers);
    this._setState('connecting');
    let ws;
    try {
      ws = new this._WebSocket(this.url, 'sip');
    } catch (err) {
      this._down(`cannot open WebSocket: ${err.message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    ws.onopen = () => { if (ws === this._ws) this._opened(); };
    ws.onmessage = (e) => { if (ws === this._ws) this._frame(e.data); };
    ws.onclose = (e) => {
      if (ws === this._ws) this._down(`socket closed (${e.code}${e.reason ? ' ' + e.reason : ''})`);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  _opened() {
    if (this._ws.protocol !== 'sip') { // RFC 7118 §4.1: the hub must have chosen "sip"
      this._down('the hub did not accept the "sip" subprotocol');
      return;
    }
    this._setState('connected');
    this._timers.stable = this._setTimeout(() => { this._attempt = 0; }, STABLE_AFTER);
    this._timers.ping = this._setTimeout(() => this._ping(), KEEPALIVE_INTERVAL);
    for (const slot of this._slots.values()) this._subscribe(slot, this.expires);
  }

  _ping() {
    this._timers.pong = this._setTimeout(() => this._down('keepalive timeout'), KEEPALIVE_TIMEOUT);
    this._timers.ping = this._setTimeout(() => this._ping(), KEEPALIVE_INTERVAL);
    this._sendRaw('\r\n\r\n');
  }

  // _down handles a lost connection: every lamp loses its state, then a reconnect is scheduled.
  _down(reason) {
    this._teardown('reconnecting', reason);
    const delay = backoff(this._attempt++, this._random);
    const retryAt = this._now() + delay;
    this._timers.reconnect = this._setTimeout(() => this._connect(), delay);
    this._setState('reconnecting', { retryAt, reason });
  }

  _teardown(state, reason) {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, state === 'stopped' ? 'bye' : ''); } catch { /* already closed */ }
    }
    this._clearAll(this._timers);
    for (const t of this._transactions.values()) this._clearTimeout(t.timer);
    this._transactions.clear();
    for (const d of this._dialogs.values()) this._clearAll(d.timers);
    this._dialogs.clear();
    for (const slot of this._slots.values()) {
      this._clear(slot, 'retryTimer');
      slot.dialog = null;
      this._update(slot, null, 'offline', reason);
    }
    if (state === 'stopped') this._setState('stopped');
  }

  _frame(data) {
    this._clear(this._timers, 'pong'); // any frame proves the hub is alive
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    if (text === '\r\n\r\n') { this._sendRaw('\r\n'); return; } // RFC 5626 §4.4.1 ping
    if (text.trim() === '') return;                               // a pong
    let msg;
    try {
      msg = parse(text);
    } catch {
      return; // a malformed message is dropped (RFC 3261 §16.3 spirit; nothing to answer)
    }
    if (msg.isRequest) this._request(msg);
    else this._response(msg);
  }

  _response(res) {
    const branch = topViaBranch(res);
    const t = this._transactions.get(branch);
    if (!t || res.status < 200) return; // stray, or provisional
    this._transactions.delete(branch);
    this._clearTimeout(t.timer);
    t.onResponse(res);
  }

  _request(req) {
    switch (req.method) {
      case 'NOTIFY': this._notify(req); break;
      case 'OPTIONS':
        this._respond(req, 200, 'OK', [
          ['Allow', 'NOTIFY, OPTIONS'],
          ['Accept', PACKAGES.map((p) => p.accept).join(', ')],
        ]);
        break;
      case 'ACK': break;
      default: this._respond(req, 405, 'Method Not Allowed', [['Allow', 'NOTIFY, OPTIONS']]);
    }
  }

  // ---- subscriptions ----

  _subscribe(slot, expires) {
    this._clear(slot, 'retryTimer');
    const d = {
      slot, ext: slot.ext, list: slot.list, event: slot.event, accept: slot.list ? `${LIST_ACCEPT}, ${slot.accept}` : slot.accept,
      callId: randomToken(20), localTag: randomToken(10), remoteTag: null, remoteTarget: null,
      cseq: 0, remoteCSeq: -1, confirmed: false, activeSince: 0, timers: {},
    };
    slot.dialog = d;
    this._dialogs.set(d.callId, d);
    this._update(slot, null, 'subscribing');
    this._sendSubscribe(d, expires);
  }

  // _sendSubscribe sends the initial SUBSCRIBE, or one inside the dialog once it has a remote
  // tag (refresh, RFC 6665 §4.1.2.2, or removal with expires 0, §4.1.2.3).
  _sendSubscribe(d, expires) {
    const target = `sip:${d.list ? 'rls' : d.ext}@${this.domain}`;
    const branch = 'z9hG4bK' + randomToken(12);
    d.cseq++;
    let body = '';
    const extra = [];
    if (d.list) {
      extra.push(['Supported', 'eventlist']); // RFC 4662 §4.1
      if (!d.remoteTag) { // RFC 5367 §3: the list travels in the initial SUBSCRIBE only
        body = resourceListsBody(d.list, this.domain);
        extra.push(['Require', 'recipient-list-subscribe'], ['Content-Type', 'application/resource-lists+xml'],
          ['Content-Disposition', 'recipient-list']);
      }
    }
    const msg = buildRequest('SUBSCRIBE', d.remoteTag ? (d.remoteTarget || target) : target, [
      ['Via', `SIP/2.0/${this.secure ? 'WSS' : 'WS'} ${this._viaHost};branch=${branch}`],
      ['Max-Forwards', '70'],
      ['To', d.remoteTag ? `<${target}>;tag=${d.remoteTag}` : `<${target}>`],
      ['From', `"${this.displayName.replace(/["\\]/g, '')}" <${this.aor}>;tag=${d.localTag}`],
      ['Call-ID', d.callId],
      ['CSeq', `${d.cseq} SUBSCRIBE`],
      ['Contact', this._contact],
      ['Event', d.event],
      ['Accept', d.accept],
      ['Expires', String(expires)],
      ['Allow', 'NOTIFY, OPTIONS'],
      ['User-Agent', this.userAgent],
      ...extra,
    ], body);
    if (!this._sendRaw(msg)) return;
    const timer = this._setTimeout(() => {
      this._transactions.delete(branch);
      this._subscribeAnswered(d, expires, null);
    }, TIMER_F);
    this._transactions.set(branch, { timer, onResponse: (res) => this._subscribeAnswered(d, expires, res) });
  }

  // _subscribeAnswered handles the final answer to a SUBSCRIBE (res null: Timer F fired).
  _subscribeAnswered(d, expires, res) {
    const ok = res && res.status >= 200 && res.status < 300;
    if (ok) {
      if (!d.remoteTag) d.remoteTag = parseNameAddr(res.get('to')).params.tag || null;
      const contact = res.get('contact');
      if (contact) d.remoteTarget = parseNameAddr(contact).uri;
    }
    if (expires === 0) { // un-SUBSCRIBE answered; wait a little for the final NOTIFY, then forget
      if (!ok) this._forget(d);
      return;
    }
    if (!d.slot || d.slot.dialog !== d) { // dropped while the SUBSCRIBE was on its way
      if (ok) this._unsubscribe(d);
      else this._forget(d);
      return;
    }
    const slot = d.slot;
    if (ok) {
      const granted = intHeader(res, 'expires') ?? expires;
      this._attempt = 0; // the hub works
      d.confirmed = true;
      this._schedule(d, granted);
      return;
    }
    const status = res ? res.status : 408;
    const why = res ? `${res.status} ${res.reason}` : 'no answer (408)';
    const minExpires = res ? intHeader(res, 'min-expires') : undefined;
    if (d.confirmed && status !== 481) {
      // A failed refresh leaves the subscription in place until it expires (RFC 6665 §4.1.2.2).
      if (status === 423 && minExpires) this._sendSubscribe(d, Math.max(minExpires, expires));
      else this._timer(d.timers, 'refresh', () => this._refresh(d), backoff(slot.attempt++, this._random));
      return;
    }
    this._lose(d, why);
    if (status === 423 && minExpires && minExpires > expires) { // RFC 6665 §4.1.2.1: ask for more
      this._subscribe(slot, minExpires);
      return;
    }
    const retryable = !res || RETRYABLE_4XX.has(status) || status >= 500;
    if (!retryable) {
      this._update(slot, null, 'failed', why);
      return;
    }
    const retryAfter = res ? intHeader(res, 'retry-after') : undefined;
    let delay = retryAfter !== undefined ? retryAfter * 1000 : backoff(slot.attempt, this._random);
    if (status === 481 && slot.attempt === 0) delay = 0; // the hub lost it: a new one at once
    slot.attempt++;
    this._retry(slot, delay, why);
  }

  // _schedule arms the refresh and the expiry guard of a dialog granted for expires seconds.
  _schedule(d, expires) {
    if (expires <= 0) return;
    this._timer(d.timers, 'refresh', () => this._refresh(d), refreshDelay(expires));
    this._timer(d.timers, 'expiry', () => {
      // Not refreshed in time: the notifier has dropped it, so the state is no longer current.
      const slot = d.slot;
      this._lose(d, 'subscription expired');
      if (slot && this._slots.get(slot.key) === slot) this._retry(slot, 0, 'expired');
    }, expires * 1000);
  }

  _refresh(d) {
    if (this._state === 'connected' && d.slot && d.slot.dialog === d) this._sendSubscribe(d, this.expires);
  }

  _unsubscribe(d) {
    if (d.slot && d.slot.dialog === d) d.slot.dialog = null;
    d.slot = null;
    this._clearAll(d.timers);
    if (this._state === 'connected' && d.remoteTag) {
      this._sendSubscribe(d, 0);
      this._timer(d.timers, 'forget', () => this._forget(d), TIMER_F);
    } else if (this._state !== 'connected') {
      this._forget(d);
    }
    // else: no 200 yet; _subscribeAnswered un-subscribes once it has the dialog's remote tag.
  }

  _forget(d) {
    this._clearAll(d.timers);
    this._dialogs.delete(d.callId);
  }

  // _lose ends a dialog whose state can no longer be trusted and blanks its slot.
  _lose(d, reason) {
    const slot = d.slot;
    this._forget(d);
    if (!slot || slot.dialog !== d) return;
    slot.dialog = null;
    if (d.activeSince && this._now() - d.activeSince >= STABLE_AFTER) slot.attempt = 0;
    this._update(slot, null, 'offline', reason);
  }

  _retry(slot, delay, reason) {
    this._clear(slot, 'retryTimer');
    if (this._state !== 'connected') return; // the reconnect subscribes afresh
    if (delay <= 0) {
      this._subscribe(slot, this.expires);
      return;
    }
    const retryAt = this._now() + delay;
    slot.retryTimer = this._setTimeout(() => {
      slot.retryTimer = null;
      if (this._state === 'connected' && this._slots.get(slot.key) === slot) {
        this._subscribe(slot, this.expires);
      }
    }, delay);
    this._update(slot, null, 'retrying', reason, retryAt);
  }

  // _notify answers a NOTIFY (RFC 6665 §4.1.3) and passes its state on.
  _notify(req) {
    const d = this._dialogs.get(req.get('call-id'));
    const from = parseNameAddr(req.get('from'));
    const toTag = parseNameAddr(req.get('to')).params.tag;
    if (!d || toTag !== d.localTag || (d.remoteTag && from.params.tag !== d.remoteTag)) {
      this._respond(req, 481, 'Subscription Does Not Exist');
      return;
    }
    const cseq = parseCSeq(req.get('cseq')).seq;
    if (cseq <= d.remoteCSeq) { // RFC 3261 §12.2.2: a lower CSeq is out of order
      this._respond(req, 500, 'CSeq Out Of Order');
      return;
    }
    const ssHeader = req.get('subscription-state');
    if (!ssHeader) {
      this._respond(req, 400, 'Missing Subscription-State');
      return;
    }
    if (parseValueParams(req.get('event')).value !== d.event) {
      this._respond(req, 489, 'Bad Event');
      return;
    }
    d.remoteCSeq = cseq;
    if (!d.remoteTag) d.remoteTag = from.params.tag || null; // a NOTIFY may overtake the 200
    const contact = req.get('contact');
    if (contact) d.remoteTarget = parseNameAddr(contact).uri;
    this._respond(req, 200, 'OK');

    const ss = parseSubscriptionState(ssHeader);
    const slot = d.slot;
    if (!slot || slot.dialog !== d) { // being un-subscribed
      if (ss.state === 'terminated') this._forget(d);
      return;
    }
    if (ss.state === 'terminated') {
      this._lose(d, `terminated${ss.reason ? ': ' + ss.reason : ''}`);
      const delay = resubscribeDelay(ss.reason, ss.retryAfter, slot.attempt++, this._random);
      if (delay === null) this._update(slot, null, 'failed', ss.reason);
      else this._retry(slot, delay, ss.reason || 'terminated');
      return;
    }
    if (ss.expires !== undefined) this._schedule(d, ss.expires);
    if (!d.activeSince) d.activeSince = this._now();
    // A list NOTIFY needs the whole Content-Type (boundary, start) to be read.
    const contentType = d.list ? req.get('content-type') : parseValueParams(req.get('content-type')).value;
    if (req.body && contentType) this._update(slot, req.body, ss.state === 'pending' ? 'pending' : 'active', '', 0, contentType);
    else if (ss.state === 'pending') this._update(slot, null, 'pending');
  }

  // ---- helpers ----

  _respond(req, status, reason, extra = []) {
    this._sendRaw(buildResponse(req, status, reason, extra));
  }

  _sendRaw(text) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  _update(slot, body, state, reason = '', retryAt = 0, contentType = '') {
    this.dispatchEvent(new CustomEvent('update', {
      detail: { ext: slot.ext, exts: slot.list || null, event: slot.event, body, contentType, state, reason, retryAt },
    }));
  }

  _setState(state, extra = {}) {
    this._state = state;
    this.dispatchEvent(new CustomEvent('status', {
      detail: { state, retryAt: extra.retryAt || 0, reason: extra.reason || '' },
    }));
  }

  _timer(bag, name, fn, ms) {
    this._clear(bag, name);
    bag[name] = this._setTimeout(() => { bag[name] = null; fn(); }, ms);
  }

  _clear(bag, name) {
    if (bag[name] != null) this._clearTimeout(bag[name]);
    bag[name] = null;
  }

  _clearAll(bag) {
    for (const name of Object.keys(bag)) this._clear(bag, name);
  }
}
