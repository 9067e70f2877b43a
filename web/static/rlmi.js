// rlmi.js: resource-list NOTIFYs (RFC 4662) for browsers and Node, with no dependency and no
// DOMParser. A list NOTIFY carries a multipart/related body (RFC 2387) whose first part is the
// list meta-information (RLMI, RFC 4662 §5) and whose other parts are the members' documents:
// dialog-info (RFC 4235), PIDF (RFC 3863) or simple-message-summary (RFC 3842).
//
//   import { parseListNotify, ResourceList } from './rlmi.js';
//   const list = new ResourceList();
//   // for every NOTIFY of the list subscription (body and Content-Type as received):
//   const r = list.apply(parseListNotify(body, contentType));
//   if (r.resync) { /* a version was missed: refresh the subscription to get full state */ }
//   for (const uri of r.changed) console.log(uri, list.get(uri).state, list.get(uri).doc);
//
// parseListNotify reads any RFC 2046 multipart layout (headers in any order, LF or CRLF line
// ends, a preamble), not only the fixed one presencehub writes (docs/protocol.md, "Resource lists").

const RLMI_TYPE = 'application/rlmi+xml';

/** Reads the parameters of a Content-Type value: {type, params}; names lower-cased. */
export function parseContentType(value = '') {
  const [type, ...rest] = splitOutsideQuotes(String(value), ';');
  const params = {};
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i < 0) continue;
    let v = p.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[p.slice(0, i).trim().toLowerCase()] = v;
  }
  return { type: type.trim().toLowerCase(), params };
}

function splitOutsideQuotes(s, sep) {
  const out = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' && s[i - 1] !== '\\') q = !q;
    if (c === sep && !q) { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * Splits a multipart body (RFC 2046 §5.1.1) into parts:
 * [{contentType, contentId (without <>), headers: {lower-case name: value}, body}].
 * Throws when the boundary never appears or the close delimiter is missing.
 */
export function parseMultipart(body, boundary) {
  if (!boundary) throw new Error('rlmi: multipart without boundary');
  const text = String(body);
  const delim = `--${boundary}`;
  const parts = [];
  // A delimiter starts a line: the body's start or after a line end (which belongs to it).
  let at = text.startsWith(delim) ? 0 : text.indexOf(`\n${delim}`);
  if (at < 0) throw new Error('rlmi: boundary not found in the body');
  if (at > 0) at += 1;
  for (;;) {
    let p = at + delim.length;
    if (text.startsWith('--', p)) return parts; // close delimiter
    const lineEnd = text.indexOf('\n', p);
    if (lineEnd < 0) break;
    p = lineEnd + 1;
    const next = text.indexOf(`\n${delim}`, p - 1);
    if (next < 0) break;
    let chunk = text.slice(p, next);
    if (chunk.endsWith('\r')) chunk = chunk.slice(0, -1);
    parts.push(readPart(chunk));
    at = next + 1;
  }
  throw new Error('rlmi: multipart body without close delimiter');
}

function readPart(chunk) {
  const m = /\r?\n\r?\n/.exec(chunk);
  const head = m ? chunk.slice(0, m.index) : '';
  const body = m ? chunk.slice(m.index + m[0].length) : chunk.replace(/^\r?\n/, '');
  const headers = {};
  let last = '';
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) { headers[last] += ` ${line.trim()}`; continue; }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i).trim().toLowerCase();
    headers[last] = line.slice(i + 1).trim();
  }
  const contentId = (headers['content-id'] || '').replace(/^<|>$/g, '');
  return { contentType: parseContentType(headers['content-type'] || 'text/plain').type, contentId, headers, body };
}

// ---- a small XML reader: elements with local names, attributes and text ----

const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (all, e) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) ? String.fromCodePoint(n) : all;
    }
    return ENTITIES[e] ?? all;
  });
}

const localName = (qname) => qname.slice(qname.indexOf(':') + 1);

/**
 * Parses an XML document into {name, ns, attrs, children, text}: name is the local name, ns the
 * namespace URI, attrs keyed by local name (xmlns declarations left out). Enough for the
 * documents of this module; throws on mismatched or unclosed tags. Namespaces are resolved.
 */
export function parseXml(text) {
  const src = String(text);
  const root = { name: '#document', ns: '', attrs: {}, children: [], text: '', scope: {} };
  const stack = [root];
  const re = /<!\[CDATA\[([\s\S]*?)\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<\/([^\s>]+)\s*>|<([^\s/>!?]+)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)|(<)/gy;
  let m;
  while ((m = re.exec(src)) !== null && m[0] !== '') {
    const top = stack[stack.length - 1];
    if (m[1] !== undefined) top.text += m[1];
    else if (m[2] !== undefined) {
      const el = stack.pop();
      if (stack.length === 0 || el.qname !== m[2]) throw new Error(`rlmi: malformed XML (unexpected </${m[2]}>)`);
    } else if (m[3] !== undefined) {
      const scope = { ...top.scope };
      const raw = {};
      for (const a of m[4].matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        const v = decode(a[2] ?? a[3]);
        if (a[1] === 'xmlns') scope[''] = v;
        else if (a[1].startsWith('xmlns:')) scope[a[1].slice(6)] = v;
        else raw[localName(a[1])] = v;
      }
      const prefix = m[3].includes(':') ? m[3].slice(0, m[3].indexOf(':')) : '';
      const el = { name: localName(m[3]), qname: m[3], ns: scope[prefix] || '', attrs: raw, children: [], text: '', scope };
      top.children.push(el);
      if (!m[5]) stack.push(el);
    } else if (m[6] !== undefined) top.text += decode(m[6]);
    else if (m[7] !== undefined) throw new Error('rlmi: malformed XML (stray <)');
  }
  if (stack.length !== 1 || root.children.length !== 1) throw new Error('rlmi: malformed XML (unclosed element)');
  return root.children[0];
}

const kids = (el, name) => (el ? el.children.filter((c) => c.name === name) : []);
const kid = (el, name) => kids(el, name)[0];
const textOf = (el) => (el ? el.text.trim() : '');

// ---- RLMI ----

const NS_RLMI = 'urn:ietf:params:xml:ns:rlmi';

/**
 * Reads an RLMI document (RFC 4662 §5.2): {uri, version, fullState, resources: [{uri, name,
 * instances: [{id, state, reason, cid}]}]}. state is 'active', 'pending' or 'terminated'.
 */
export function parseRlmi(text) {
  const root = parseXml(text);
  if (root.name !== 'list' || root.ns !== NS_RLMI) throw new Error('rlmi: not an RLMI document');
  const version = Number(root.attrs.version);
  if (!root.attrs.uri || !Number.isInteger(version) || version < 0) throw new Error('rlmi: list without uri or version');
  if (root.attrs.fullState !== 'true' && root.attrs.fullState !== 'false') throw new Error('rlmi: list without fullState');
  return {
    uri: root.attrs.uri,
    version,
    fullState: root.attrs.fullState === 'true',
    name: textOf(kid(root, 'name')),
    resources: kids(root, 'resource').map((r) => ({
      uri: r.attrs.uri || '',
      name: textOf(kid(r, 'name')),
      instances: kids(r, 'instance').map((i) => ({
        id: i.attrs.id || '', state: i.attrs.state || '', reason: i.attrs.reason || '', cid: i.attrs.cid || '',
      })),
    })),
  };
}

/**
 * Reads a list NOTIFY body with its Content-Type header value: the RLMI document joined with
 * the members' documents. Returns {uri, version, fullState, resources: [{uri, name, state,
 * reason, instance, contentType, body, doc}]}: state and reason of the (first) instance, body
 * the member's document text (null when none came), doc that document read by readDocument.
 */
export function parseListNotify(body, contentType) {
  const ct = parseContentType(contentType);
  if (ct.type !== 'multipart/related') throw new Error(`rlmi: ${ct.type || 'no content type'} is not multipart/related`);
  const parts = parseMultipart(body, ct.params.boundary);
  const start = (ct.params.start || '').replace(/^<|>$/g, '');
  const root = start ? parts.find((p) => p.contentId === start) : parts[0];
  if (!root || root.contentType !== RLMI_TYPE) throw new Error('rlmi: no application/rlmi+xml root part');
  const byCid = new Map(parts.map((p) => [p.contentId, p]));
  const rlmi = parseRlmi(root.body);
  return {
    uri: rlmi.uri,
    version: rlmi.version,
    fullState: rlmi.fullState,
    resources: rlmi.resources.map((r) => {
      const inst = r.instances[0] || { id: '', state: 'pending', reason: '', cid: '' };
      const part = inst.cid ? byCid.get(inst.cid) : undefined;
      const res = {
        uri: r.uri, name: r.name, state: inst.state, reason: inst.reason, instance: inst.id,
        contentType: part ? part.contentType : '', body: part ? part.body : null, doc: null,
      };
      if (part) res.doc = readDocument(part.contentType, part.body);
      return res;
    }),
  };
}

/**
 * Reads a member's document by its type: dialog-info → readDialogInfo, PIDF → readPidf,
 * simple-message-summary → readMessageSummary; null for another type.
 */
export function readDocument(type, text) {
  switch (type) {
    case 'application/dialog-info+xml': return readDialogInfo(text);
    case 'application/pidf+xml': return readPidf(text);
    case 'application/simple-message-summary': return readMessageSummary(text);
    default: return null;
  }
}

// ---- the members' documents ----

const NS_DIALOG = 'urn:ietf:params:xml:ns:dialog-info';
const NS_PIDF = 'urn:ietf:params:xml:ns:pidf';
/** The hub's namespace: <since> in a <dialog> is when the hub saw it enter its state. */
export const NS_HUB = 'urn:x-presencehub:dialog';

/**
 * Reads dialog-info (RFC 4235 §4.1) into the model of blf.js's readDialogInfo: {version, full,
 * entity, dialogs: [{id, callId, direction, state, duration, since, local, remote}]};
 * local/remote: {identity, display, target, rendering}; duration: seconds from <duration>, or
 * null; since: epoch ms from the hub's <since xmlns="urn:x-presencehub:dialog"> (the instant the
 * dialog entered its state, RFC 3339 UTC), or null when the document has none.
 */
export function readDialogInfo(text) {
  const root = parseXml(text);
  if (root.name !== 'dialog-info' || root.ns !== NS_DIALOG) throw new Error('rlmi: not a dialog-info document');
  return {
    version: Number(root.attrs.version || 0),
    full: (root.attrs.state || 'full') === 'full',
    entity: root.attrs.entity || '',
    dialogs: kids(root, 'dialog').map((d) => {
      const dur = textOf(kid(d, 'duration'));
      return {
        id: d.attrs.id || '', callId: d.attrs['call-id'] || '',
        direction: (d.attrs.direction || '').toLowerCase(),
        state: textOf(kid(d, 'state')).toLowerCase(),
        duration: /^\d+$/.test(dur) ? Number(dur) : null,
        since: sinceOf(d.children.find((c) => c.name === 'since' && c.ns === NS_HUB)),
        local: participant(kid(d, 'local')), remote: participant(kid(d, 'remote')),
      };
    }),
  };
}

// sinceOf reads the hub's stamp (RFC 3339 UTC) as epoch ms, or null.
function sinceOf(el) {
  const t = el ? Date.parse(textOf(el)) : NaN;
  return Number.isFinite(t) ? t : null;
}

function participant(el) {
  const id = kid(el, 'identity');
  const target = kid(el, 'target');
  let rendering = '';
  for (const p of kids(target, 'param')) {
    if ((p.attrs.pname || '').toLowerCase() === '+sip.rendering') rendering = (p.attrs.pvalue || '').replace(/"/g, '').toLowerCase();
  }
  const m = /;\+sip\.rendering="?([a-z]+)"?/i.exec(target ? target.attrs.uri || '' : '');
  if (!rendering && m) rendering = m[1].toLowerCase();
  return { identity: textOf(id), display: id ? id.attrs.display || '' : '', target: target ? target.attrs.uri || '' : '', rendering };
}

/**
 * Reads PIDF (RFC 3863) into the model of blf.js's readPidf: {basic, activities, note}; basic
 * 'open' when a tuple is open, 'closed' when tuples exist and none is, '' without tuples.
 */
export function readPidf(text) {
  const root = parseXml(text);
  if (root.name !== 'presence' || root.ns !== NS_PIDF) throw new Error('rlmi: not a PIDF document');
  const basics = kids(root, 'tuple').map((t) => textOf(kid(kid(t, 'status'), 'basic')).toLowerCase()).filter(Boolean);
  let basic = '';
  if (basics.length) basic = basics.includes('open') ? 'open' : 'closed';
  const activities = [];
  const walk = (el) => {
    for (const c of el.children) {
      if (c.name === 'activities') {
        for (const a of c.children) if (a.name !== 'note' && !activities.includes(a.name)) activities.push(a.name);
      } else walk(c);
    }
  };
  walk(root);
  const notes = [];
  for (const where of ['person', 'tuple']) for (const el of kids(root, where)) notes.push(...kids(el, 'note').map(textOf));
  notes.push(...kids(root, 'note').map(textOf));
  return { basic, activities, note: notes.find(Boolean) || '' };
}

/**
 * Reads application/simple-message-summary (RFC 3842 §5): {waiting, account, messages}, where
 * messages maps a message class ('voice', 'fax', ... lower-cased, RFC 3458) to
 * {new, old, urgentNew, urgentOld}. Throws without a Messages-Waiting line.
 */
export function readMessageSummary(text) {
  let waiting = null;
  let account = '';
  const messages = {};
  for (const line of String(text).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'messages-waiting') waiting = value.toLowerCase() === 'yes';
    else if (name === 'message-account') account = value;
    else {
      const m = /^(\d+)\s*\/\s*(\d+)(?:\s*\(\s*(\d+)\s*\/\s*(\d+)\s*\))?/.exec(value);
      if (m && name.endsWith('-message')) {
        messages[name.slice(0, -'-message'.length)] = {
          new: Number(m[1]), old: Number(m[2]), urgentNew: Number(m[3] || 0), urgentOld: Number(m[4] || 0),
        };
      }
    }
  }
  if (waiting === null) throw new Error('rlmi: message summary without Messages-Waiting');
  return { waiting, account, messages };
}

// ---- list state ----

/**
 * ResourceList keeps the state of one list subscription from its NOTIFYs (RFC 4662 §5.4):
 * full state replaces the members, partial state updates the members it names. The RLMI
 * version must rise by exactly one per NOTIFY: a lower or equal one is stale and ignored, a gap
 * means a NOTIFY was missed, so the state is incomplete until the next full state (apply
 * returns resync: refresh the subscription, which brings full state).
 *
 * A member: {uri, name, state, reason, contentType, body, doc}; body/doc are kept from earlier
 * NOTIFYs while a later one names the member without a document (its document did not change).
 */
export class ResourceList {
  constructor() {
    this.uri = '';
    this.version = -1;
    this.needsResync = false;
    this.members = new Map(); // uri -> member, in list order of the last full state
  }

  /** The member with this URI, or undefined. */
  get(uri) { return this.members.get(uri); }

  /**
   * Applies a parsed NOTIFY (parseListNotify). Returns {changed: [uri], removed: [uri],
   * resync: boolean, stale: boolean}.
   */
  apply(n) {
    const out = { changed: [], removed: [], resync: false, stale: false };
    if (!n.fullState) {
      if (this.version < 0 || this.needsResync) { // nothing to merge into
        this.needsResync = true;
        out.resync = true;
        return out;
      }
      if (n.version <= this.version) { out.stale = true; return out; }
      if (n.version !== this.version + 1) {
        this.needsResync = true;
        this.version = n.version;
        out.resync = true;
        return out;
      }
    } else if (this.version >= 0 && n.version <= this.version && !this.needsResync) {
      out.stale = true;
      return out;
    }
    this.uri = n.uri;
    this.version = n.version;
    const next = n.fullState ? new Map() : this.members;
    for (const r of n.resources) {
      const prev = this.members.get(r.uri);
      const m = {
        uri: r.uri, name: r.name || (prev ? prev.name : ''), state: r.state, reason: r.reason,
        contentType: r.contentType, body: r.body, doc: r.doc,
      };
      if (r.state !== 'active') { m.body = null; m.doc = null; m.contentType = ''; }
      else if (r.body === null && prev) { m.body = prev.body; m.doc = prev.doc; m.contentType = prev.contentType; }
      else if (prev && prev.doc && r.doc && r.contentType === 'application/dialog-info+xml' && !r.doc.full) {
        m.doc = mergeDialogs(prev.doc, r.doc);
      }
      if (n.fullState) next.set(r.uri, m);
      else this.members.set(r.uri, m);
      if (!prev || prev.state !== m.state || prev.reason !== m.reason || prev.body !== m.body || prev.name !== m.name) out.changed.push(r.uri);
    }
    if (n.fullState) {
      for (const uri of this.members.keys()) if (!next.has(uri)) out.removed.push(uri);
      this.members = next;
      this.needsResync = false;
    }
    return out;
  }
}

// A partial dialog-info document (RFC 4235 §4.1) updates dialogs by id.
function mergeDialogs(prev, next) {
  const byId = new Map(prev.dialogs.map((d) => [d.id, d]));
  for (const d of next.dialogs) byId.set(d.id, d);
  return { ...next, full: true, dialogs: [...byId.values()].filter((d) => d.state !== 'terminated') };
}
