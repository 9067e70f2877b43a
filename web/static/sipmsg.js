// sipmsg.js: the SIP message syntax the console needs (RFC 3261 §7 messages, §20 headers,
// §25 grammar, compact header forms of §7.3.3). Pure functions, no I/O: sipws.js moves them.

// Compact header names (RFC 3261 §7.3.3 and the event extensions of RFC 6665 §8.4).
const COMPACT = {
  i: 'call-id', f: 'from', t: 'to', v: 'via', m: 'contact', l: 'content-length',
  c: 'content-type', e: 'content-encoding', k: 'supported', s: 'subject',
  o: 'event', u: 'allow-events', r: 'refer-to', b: 'referred-by',
};

/** A parsed SIP request or response. Header names are kept lower-case and unabbreviated. */
export class Message {
  constructor() {
    this.method = '';   // request method ('' for a response)
    this.uri = '';      // Request-URI
    this.status = 0;    // response status code (0 for a request)
    this.reason = '';   // response reason phrase
    this.headers = [];  // [[name, value], ...] in wire order
    this.body = '';
  }

  get isRequest() { return this.status === 0; }

  /** First value of a header, or undefined. */
  get(name) {
    name = name.toLowerCase();
    const h = this.headers.find(([n]) => n === name);
    return h ? h[1] : undefined;
  }

  /** Every value of a header, also the comma-separated ones of one line (RFC 3261 §7.3.1). */
  getAll(name) {
    name = name.toLowerCase();
    return this.headers.filter(([n]) => n === name).flatMap(([, v]) => splitList(v));
  }
}

/** Parses one SIP message (one WebSocket frame, RFC 7118 §5.2). Throws on a malformed message. */
export function parse(text) {
  let end = text.indexOf('\r\n\r\n');
  let sepLen = 4;
  if (end < 0) { // tolerate bare LF line ends, and a message without a body separator
    end = text.indexOf('\n\n');
    sepLen = 2;
    if (end < 0) { end = text.length; sepLen = 0; }
  }
  const lines = text.slice(0, end).split(/\r?\n/);
  const m = new Message();
  const start = lines.shift() || '';
  let match;
  if ((match = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(start))) {
    m.status = Number(match[1]);
    m.reason = match[2];
  } else if ((match = /^([A-Za-z]+) (\S+) SIP\/2\.0$/.exec(start))) {
    m.method = match[1].toUpperCase();
    m.uri = match[2];
  } else {
    throw new Error(`sipmsg: bad start line ${JSON.stringify(start.slice(0, 80))}`);
  }
  for (const line of lines) {
    if (/^[ \t]/.test(line) && m.headers.length > 0) { // folded line (RFC 3261 §7.3.1)
      m.headers[m.headers.length - 1][1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`sipmsg: bad header line ${JSON.stringify(line.slice(0, 80))}`);
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] || name;
    m.headers.push([name, line.slice(colon + 1).trim()]);
  }
  m.body = text.slice(end + sepLen);
  for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (m.get(h) === undefined) throw new Error(`sipmsg: missing ${h} header`);
  }
  return m;
}

/** Builds a request. headers: [[Name, value], ...]; Content-Length is added. */
export function buildRequest(method, uri, headers, body = '') {
  return serialize(`${method} ${uri} SIP/2.0`, headers, body);
}

/**
 * Builds a response to req (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and CSeq copied, a To tag
 * added when the request had none, then extra headers.
 */
export function buildResponse(req, status, reason, extra = [], toTag = randomToken(10)) {
  const headers = [];
  for (const [n, v] of req.headers) if (n === 'via') headers.push(['Via', v]);
  headers.push(['From', req.get('from')]);
  let to = req.get('to');
  if (status > 100 && !parseNameAddr(to).params.tag) to += `;tag=${toTag}`;
  headers.push(['To', to]);
  headers.push(['Call-ID', req.get('call-id')]);
  headers.push(['CSeq', req.get('cseq')]);
  return serialize(`SIP/2.0 ${status} ${reason}`, headers.concat(extra), '');
}

function serialize(startLine, headers, body) {
  let s = startLine + '\r\n';
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  s += `Content-Length: ${new TextEncoder().encode(body).length}\r\n\r\n`;
  return s + body;
}

/**
 * Parses a name-addr or addr-spec header value (From, To, Contact, RFC 3261 §20.10):
 * '"Alice" <sip:a@b>;tag=1' -> {display: 'Alice', uri: 'sip:a@b', params: {tag: '1'}}.
 */
export function parseNameAddr(value) {
  let v = String(value || '').trim();
  let display = '';
  let uri;
  let rest;
  if (v.startsWith('"')) {
    let i = 1;
    for (; i < v.length && v[i] !== '"'; i++) {
      if (v[i] === '\\') i++;
      display += v[i] ?? '';
    }
    v = v.slice(i + 1).trim();
  }
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    if (!display) display = v.slice(0, lt).trim();
    uri = v.slice(lt + 1, gt < 0 ? v.length : gt);
    rest = gt < 0 ? '' : v.slice(gt + 1);
  } else {
    const semi = v.indexOf(';');
    uri = semi < 0 ? v : v.slice(0, semi);
    rest = semi < 0 ? '' : v.slice(semi);
  }
  return { display, uri: uri.trim(), params: parseParams(rest) };
}

/** Parses ';a=1;b;c="x"' into {a: '1', b: '', c: 'x'}; names lower-case. */
export function parseParams(s) {
  const params = {};
  for (const part of String(s || '').split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    let val = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (val.length >= 2 && val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
    params[name] = val;
  }
  return params;
}

/** Parses a value with parameters such as Event or Subscription-State: 'dialog;id=7'. */
export function parseValueParams(value) {
  const v = String(value || '');
  const semi = v.indexOf(';');
  return {
    value: (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase(),
    params: parseParams(semi < 0 ? '' : v.slice(semi)),
  };
}

/**
 * Parses Subscription-State (RFC 6665 §8.2.3, §4.1.3):
 * 'terminated;reason=giveup;retry-after=30' -> {state, reason, expires, retryAfter}.
 * Missing numbers are undefined.
 */
export function parseSubscriptionState(value) {
  const { value: state, params } = parseValueParams(value);
  const num = (s) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  return {
    state,
    reason: params.reason ? params.reason.toLowerCase() : undefined,
    expires: num(params.expires),
    retryAfter: num(params['retry-after']),
  };
}

/** Parses CSeq: '7 NOTIFY' -> {seq: 7, method: 'NOTIFY'}. */
export function parseCSeq(value) {
  const m = /^\s*(\d+)\s+([A-Za-z]+)\s*$/.exec(String(value || ''));
  return m ? { seq: Number(m[1]), method: m[2].toUpperCase() } : { seq: -1, method: '' };
}

/** The branch parameter of the top Via, or ''. */
export function topViaBranch(msg) {
  const via = msg.getAll('via')[0];
  if (!via) return '';
  const semi = via.indexOf(';');
  return semi < 0 ? '' : parseParams(via.slice(semi)).branch || '';
}

/** An integer header (Expires, Min-Expires, Retry-After), or undefined. */
export function intHeader(msg, name) {
  const v = msg.get(name);
  const m = /^\s*(\d+)/.exec(v || '');
  return m ? Number(m[1]) : undefined;
}

/** Random token from [a-z0-9] (tags, Call-IDs, branches: RFC 3261 §19.3 asks for 32 bits or more). */
export function randomToken(n = 16) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

// Splits a header value at commas outside quotes and angle brackets (RFC 3261 §7.3.1).
function splitList(v) {
  const out = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (quoted) {
      if (c === '\\') { cur += c + (v[++i] ?? ''); continue; }
      if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && !angle) { out.push(cur.trim()); cur = ''; continue; }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
