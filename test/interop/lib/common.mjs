// Shared plumbing for the interop scripts: arguments, the JSON-lines event stream on stdout, a
// WebSocket that traces every SIP message, stdin commands, and the dialog-info / PIDF helpers.
//
// Protocol with the Go harness (harness_test.go):
//   stdout: one JSON object per line, always with "ev". Nothing else is ever written to stdout.
//   stderr: free-form diagnostics, including the raw SIP wire trace (kept by the harness and shown
//           when a test fails).
//   stdin:  one JSON object per line, always with "cmd". EOF on stdin means "quit", so a client
//           never outlives the test that started it.
//   exit codes: see EXIT below.

import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { WebSocket as WS } from 'ws';

export const EXIT = {
  OK: 0, // ended as asked (unregistered, unsubscribed, quit)
  ERROR: 1, // unexpected exception in the script or the library
  USAGE: 2, // bad arguments
  REFUSED: 3, // the hub refused us (registration/subscription failed, upgrade refused)
  TIMEOUT: 4, // the script's own deadline (--timeout) passed
};

// Keep stdout for events only: libraries that log with console.* go to stderr.
for (const k of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[k] = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
}

/** packageVersion is the installed version of an npm package, read from its package.json. */
export function packageVersion(name) {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export function diag(...a) {
  process.stderr.write(a.map(String).join(' ') + '\n');
}

let exiting = false;
export function exit(code, extra = {}) {
  if (exiting) return;
  exiting = true;
  emit({ ev: 'exit', code, ...extra });
  // stdout/stderr are pipes: writes are synchronous on Linux, nothing is lost.
  process.exit(code);
}

// Every script ends through exit(): an event loop that runs dry is a bug worth reporting.
process.on('beforeExit', () => {
  emit({ ev: 'error', message: 'event loop drained before the script ended' });
  exit(EXIT.ERROR);
});
process.on('uncaughtException', (err) => {
  diag('uncaughtException:', err && err.stack ? err.stack : err);
  emit({ ev: 'error', message: String(err && err.message ? err.message : err), where: 'uncaughtException' });
  exit(EXIT.ERROR);
});
process.on('unhandledRejection', (err) => {
  diag('unhandledRejection:', err && err.stack ? err.stack : err);
  emit({ ev: 'error', message: String(err && err.message ? err.message : err), where: 'unhandledRejection' });
  exit(EXIT.ERROR);
});

// Options common to every script. Each can also come from the environment (INTEROP_<NAME>,
// upper case, dashes as underscores); a flag wins over the environment.
const COMMON = {
  url: { type: 'string' }, // hub WebSocket URL, e.g. ws://127.0.0.1:1234/ws
  token: { type: 'string' }, // JWT
  auth: { type: 'string' }, // query | bearer | both | none (default query)
  domain: { type: 'string' }, // SIP domain of the hub
  user: { type: 'string' }, // our user part (JWT sub): AOR sip:<user>@<domain>
  expires: { type: 'string' }, // requested expiry in seconds
  timeout: { type: 'string' }, // seconds before the script gives up on its own (default 60)
  linger: { type: 'string' }, // ms to stay after a refusal, to show that no retry follows (default 1000)
};

export function args(extra = {}) {
  const options = { ...COMMON, ...extra };
  let parsed;
  try {
    parsed = parseArgs({ options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    emit({ ev: 'error', message: `usage: ${err.message}` });
    exit(EXIT.USAGE);
  }
  const out = {};
  for (const name of Object.keys(options)) {
    const env = process.env['INTEROP_' + name.toUpperCase().replace(/-/g, '_')];
    let v = parsed[name] !== undefined ? parsed[name] : env;
    if (options[name].type === 'boolean' && typeof v === 'string') v = v === '1' || v === 'true';
    out[name] = v;
  }
  out.auth = out.auth || 'query';
  if (!['query', 'bearer', 'both', 'none'].includes(out.auth)) {
    emit({ ev: 'error', message: `usage: --auth must be query, bearer, both or none, not ${out.auth}` });
    exit(EXIT.USAGE);
  }
  for (const need of ['url', 'domain', 'user']) {
    if (!out[need]) {
      emit({ ev: 'error', message: `usage: --${need} (or INTEROP_${need.toUpperCase()}) is required` });
      exit(EXIT.USAGE);
    }
  }
  out.token = out.token || '';
  out.expires = out.expires !== undefined ? Number(out.expires) : undefined;
  out.timeout = Number(out.timeout || 60);
  out.linger = Number(out.linger !== undefined ? out.linger : 1000);
  out.aor = `sip:${out.user}@${out.domain}`;
  // The token on the URL is what a browser can do; the Bearer header is per SIP request.
  out.wsURL = out.url;
  if ((out.auth === 'query' || out.auth === 'both') && out.token) {
    out.wsURL += (out.url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(out.token);
  }
  out.bearer = (out.auth === 'bearer' || out.auth === 'both') && out.token ? 'Bearer ' + out.token : '';
  setTimeout(() => {
    emit({ ev: 'error', message: `script timeout after ${out.timeout}s` });
    exit(EXIT.TIMEOUT);
  }, out.timeout * 1000).unref();
  return out;
}

// ---------------------------------------------------------------------------------------------
// SIP wire trace.

const sipListeners = [];
/**
 * onSip registers fn(summary, parsed) for every SIP message sent or received by any traced socket;
 * summary is the "sip" event, parsed is parseSIP's {start, headers, body}.
 */
export function onSip(fn) {
  sipListeners.push(fn);
}

let currentSocket = null;
let socketSeq = 0;

const COMPACT = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via', o: 'event', u: 'allow-events',
};

/** parseSIP splits a SIP message into start line, headers (lower-case names, arrays) and body. */
export function parseSIP(text) {
  const sep = text.indexOf('\r\n\r\n');
  const head = sep >= 0 ? text.slice(0, sep) : text;
  const body = sep >= 0 ? text.slice(sep + 4) : '';
  const lines = head.split('\r\n');
  const start = lines.shift() || '';
  const headers = {};
  let last = null;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && last) {
      headers[last][headers[last].length - 1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] || name;
    (headers[name] = headers[name] || []).push(line.slice(colon + 1).trim());
    last = name;
  }
  return { start, headers, body };
}

function param(value, name) {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*"?([^;",\\s>]+)`, 'i').exec(value || '');
  return m ? m[1] : undefined;
}

/** summarize turns one SIP message into the compact "sip" event the Go side can assert on. */
export function summarize(text, dir, conn) {
  const m = parseSIP(text);
  const h = (n) => (m.headers[n] ? m.headers[n][0] : undefined);
  const s = { ev: 'sip', dir, conn };
  const resp = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/.exec(m.start);
  if (resp) {
    s.status = Number(resp[1]);
    s.reason = resp[2];
  } else {
    const req = /^([A-Z]+)\s+(\S+)\s+SIP\/2\.0$/.exec(m.start);
    if (req) {
      s.method = req[1];
      s.ruri = req[2];
    } else {
      s.start = m.start;
    }
  }
  const cseq = /^(\d+)\s+([A-Z]+)/.exec(h('cseq') || '');
  if (cseq) {
    s.cseq = Number(cseq[1]);
    s.cseqMethod = cseq[2];
  }
  s.callId = h('call-id');
  const event = h('event');
  if (event) s.event = event;
  if (h('expires') !== undefined) s.expires = Number(h('expires'));
  const ss = h('subscription-state');
  if (ss) s.subState = ss;
  if (h('sip-etag')) s.etag = h('sip-etag');
  if (h('sip-if-match')) s.ifMatch = h('sip-if-match');
  if (h('www-authenticate')) s.wwwAuthenticate = h('www-authenticate');
  if (h('min-expires')) s.minExpires = Number(h('min-expires'));
  const contact = h('contact');
  if (contact) {
    s.contact = contact;
    const ce = param(contact, 'expires');
    if (ce !== undefined) s.contactExpires = Number(ce);
  }
  if (h('content-type')) s.contentType = h('content-type');
  if (m.body) s.bodyLen = Buffer.byteLength(m.body);
  return s;
}

function dataToString(data) {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  return String(data);
}

function trace(dir, conn, data) {
  const text = dataToString(data);
  const t = (performance.now() / 1000).toFixed(3);
  if (/^\s*$/.test(text)) {
    // RFC 5626 CRLF keepalive ping/pong.
    diag(`===== ${dir === 'out' ? 'C->S' : 'S->C'} conn=${conn} +${t}s CRLF ${JSON.stringify(text)} =====`);
    emit({ ev: 'crlf', dir, conn, len: text.length });
    return;
  }
  diag(`===== ${dir === 'out' ? 'C->S' : 'S->C'} conn=${conn} +${t}s =====\n${text}`);
  let s;
  try {
    s = summarize(text, dir, conn);
  } catch (err) {
    s = { ev: 'sip', dir, conn, start: text.slice(0, 80), parseError: String(err) };
  }
  emit(s);
  const parsed = parseSIP(text);
  for (const fn of sipListeners) fn(s, parsed);
}

/**
 * TracingWebSocket is the `ws` WebSocket with every frame written to the trace. Installed as
 * globalThis.WebSocket (Node 20 has none), so JsSIP and SIP.js use it unmodified.
 */
class TracingWebSocket extends WS {
  constructor(url, protocols, options) {
    super(url, protocols, options);
    const conn = ++socketSeq;
    this.__conn = conn;
    currentSocket = this;
    diag(`===== WebSocket conn=${conn} connecting ${redact(String(url))} =====`);
    // Registered before the library's own listeners: the trace of a message precedes the
    // events the library derives from it.
    this.on('message', (data) => trace('in', conn, data));
    this.on('open', () => {
      diag(`===== WebSocket conn=${conn} open protocol=${this.protocol} =====`);
      emit({ ev: 'ws', state: 'open', conn, protocol: this.protocol });
    });
    this.on('close', (code, reason) => {
      diag(`===== WebSocket conn=${conn} closed code=${code} reason=${reason} =====`);
      emit({ ev: 'ws', state: 'closed', conn, code, reason: String(reason || '') });
    });
    this.on('error', (err) => {
      const m = /Unexpected server response: (\d+)/.exec(String(err && err.message));
      diag(`===== WebSocket conn=${conn} error ${err && err.message} =====`);
      emit({ ev: 'ws', state: 'error', conn, message: String(err && err.message), httpStatus: m ? Number(m[1]) : undefined });
    });
  }

  send(data, ...rest) {
    // Hand the frame to ws first: a listener that reacts to it (say, by closing the socket)
    // must not overtake it.
    const r = super.send(data, ...rest);
    trace('out', this.__conn, data);
    return r;
  }
}

function redact(url) {
  return url.replace(/(access_token=)[^&]+/, '$1<redacted>');
}

export function installWebSocket() {
  globalThis.WebSocket = TracingWebSocket;
}

/**
 * dropConnection ends the current WebSocket without a closing handshake, as a network failure or
 * a hub that kills the TCP connection would: the library sees close code 1006.
 */
export function dropConnection() {
  if (currentSocket) {
    emit({ ev: 'ws', state: 'dropping', conn: currentSocket.__conn });
    currentSocket.terminate();
  }
}

/**
 * trackSubscriptions emits, from the wire, what the subscription APIs of the libraries do not
 * always surface:
 *   {"ev":"subscribeResponse","kind":"initial|refresh|unsubscribe","status":200,"expires":N,...}
 *     for every final response to a SUBSCRIBE we sent;
 *   {"ev":"notifyAnswered","cseq":N,"answer":200,"subState":"active","state":"early",...}
 *     for every NOTIFY received, once the library has answered it (with the answer's status).
 * fn(event) is also called with each of them.
 */
export function trackSubscriptions(fn = () => {}) {
  const sent = new Map(); // "callId cseq" → kind
  const notifies = new Map(); // "callId cseq" → notify summary
  onSip((s, m) => {
    if (s.dir === 'out' && s.method === 'SUBSCRIBE') {
      let kind = 'refresh';
      if (s.expires === 0) kind = 'unsubscribe';
      else if (!/;\s*tag=/i.test((m.headers.to || [''])[0])) kind = 'initial';
      sent.set(`${s.callId} ${s.cseq}`, kind);
      return;
    }
    if (s.dir === 'in' && s.cseqMethod === 'SUBSCRIBE' && s.status >= 200) {
      const key = `${s.callId} ${s.cseq}`;
      const e = { ev: 'subscribeResponse', kind: sent.get(key), status: s.status, reason: s.reason, expires: s.expires, conn: s.conn, cseq: s.cseq };
      sent.delete(key);
      emit(e);
      fn(e);
      return;
    }
    if (s.dir === 'in' && s.method === 'NOTIFY') {
      const ss = subscriptionState(s.subState);
      const body = m.body ? parseBody(s.contentType, m.body) : {};
      notifies.set(`${s.callId} ${s.cseq}`, { cseq: s.cseq, conn: s.conn, event: s.event, ...ss, ...body, hasBody: !!m.body });
      return;
    }
    if (s.dir === 'out' && s.cseqMethod === 'NOTIFY' && s.status >= 200) {
      const key = `${s.callId} ${s.cseq}`;
      const n = notifies.get(key);
      if (!n) return;
      notifies.delete(key);
      const e = { ev: 'notifyAnswered', answer: s.status, ...n };
      emit(e);
      fn(e);
    }
  });
}

/** currentConn is the number of the WebSocket in use (1 for the first, 2 after a reconnect…). */
export function currentConn() {
  return currentSocket ? currentSocket.__conn : 0;
}

// ---------------------------------------------------------------------------------------------
// stdin commands.

/**
 * commands calls handler(cmd) for each JSON line on stdin; onEOF runs once when stdin ends. A line
 * that is not JSON, or a handler that throws, is reported as an error event.
 */
export function commands(handler, onEOF) {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', async (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      emit({ ev: 'error', message: `bad command line: ${err.message}`, line });
      return;
    }
    emit({ ev: 'cmd', cmd: cmd.cmd });
    try {
      await handler(cmd);
    } catch (err) {
      diag('command failed:', err && err.stack ? err.stack : err);
      emit({ ev: 'error', message: String(err && err.message ? err.message : err), cmd: cmd.cmd });
    }
  });
  rl.on('close', () => onEOF());
}

// ---------------------------------------------------------------------------------------------
// dialog-info (RFC 4235) and PIDF (RFC 3863) bodies.

function xmlEscape(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/**
 * dialogInfoXML renders a full dialog-info document for entity. dialogs: [{id, state, direction,
 * callId, localTag, remoteTag, remote}] ("remote" is the peer's identity URI). No dialogs = idle.
 */
export function dialogInfoXML(entity, version, dialogs) {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n';
  x += `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="full" entity="${xmlEscape(entity)}">`;
  for (const d of dialogs) {
    x += `<dialog id="${xmlEscape(d.id)}"`;
    if (d.callId) x += ` call-id="${xmlEscape(d.callId)}"`;
    if (d.localTag) x += ` local-tag="${xmlEscape(d.localTag)}"`;
    if (d.remoteTag) x += ` remote-tag="${xmlEscape(d.remoteTag)}"`;
    if (d.direction) x += ` direction="${xmlEscape(d.direction)}"`;
    x += `><state>${xmlEscape(d.state)}</state>`;
    if (d.remote) x += `<remote><identity>${xmlEscape(d.remote)}</identity></remote>`;
    x += '</dialog>';
  }
  return x + '</dialog-info>\n';
}

/** pidfXML renders a one-tuple PIDF document with basic open/closed and an optional note. */
export function pidfXML(entity, basic, note, tupleId = 't1') {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n';
  x += `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${xmlEscape(entity)}">`;
  x += `<tuple id="${xmlEscape(tupleId)}"><status><basic>${xmlEscape(basic)}</basic></status></tuple>`;
  if (note) x += `<note>${xmlEscape(note)}</note>`;
  return x + '</presence>\n';
}

function attr(tag, name) {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`).exec(tag);
  return m ? (m[2] !== undefined ? m[2] : m[3]) : undefined;
}

/**
 * parseBody extracts what a BLF lamp needs from a NOTIFY body: for dialog-info the document's
 * version/state/entity, the number of dialogs and the first dialog's state ("idle" when there is
 * none); for PIDF the first tuple's basic status.
 */
export function parseBody(contentType, body) {
  const out = {};
  const ct = (contentType || '').toLowerCase();
  if (ct.includes('dialog-info') || /<(\w+:)?dialog-info\b/.test(body)) {
    const root = /<(?:\w+:)?dialog-info\b[^>]*>/.exec(body);
    if (root) {
      const v = attr(root[0], 'version');
      if (v !== undefined) out.version = Number(v);
      out.docState = attr(root[0], 'state');
      out.entity = attr(root[0], 'entity');
    }
    const dialogs = [...body.matchAll(/<(?:\w+:)?dialog\b[^>]*>([\s\S]*?)<\/(?:\w+:)?dialog>/g)];
    out.dialogs = dialogs.length;
    if (dialogs.length === 0) {
      out.state = 'idle';
    } else {
      const open = /<(?:\w+:)?dialog\b[^>]*>/.exec(dialogs[0][0])[0];
      out.dialogId = attr(open, 'id');
      out.direction = attr(open, 'direction');
      const st = /<(?:\w+:)?state\b[^>]*>\s*([^<\s]+)\s*</.exec(dialogs[0][1]);
      out.state = st ? st[1] : 'unknown';
      out.states = dialogs.map((d) => {
        const s = /<(?:\w+:)?state\b[^>]*>\s*([^<\s]+)\s*</.exec(d[1]);
        return s ? s[1] : 'unknown';
      });
    }
  } else if (ct.includes('pidf') || /<(\w+:)?presence\b/.test(body)) {
    const root = /<(?:\w+:)?presence\b[^>]*>/.exec(body);
    if (root) out.entity = attr(root[0], 'entity');
    const b = /<(?:\w+:)?basic>\s*([^<\s]+)\s*</.exec(body);
    out.state = b ? b[1] : 'unknown';
  }
  return out;
}

/** subscriptionState parses "active;expires=300" / "terminated;reason=timeout". */
export function subscriptionState(value) {
  if (!value) return {};
  const out = { subState: value.split(';')[0].trim().toLowerCase() };
  const e = param(value, 'expires');
  if (e !== undefined) out.subExpires = Number(e);
  const r = param(value, 'reason');
  if (r !== undefined) out.reason = r;
  return out;
}
