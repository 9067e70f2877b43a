// blf.js: from NOTIFY bodies to a lamp. Reads dialog-info (RFC 4235) and PIDF (RFC 3863, with
// RPID activities of RFC 4480 and the data model of RFC 4479), and decides the lamp state with the
// usual busy-lamp-field conventions. Reading needs the browser's DOMParser; deciding is pure.
//
// Lamp rules, first match wins:
//   unknown  no current dialog state: no NOTIFY yet, subscription ended, or the socket is down
//   ringing  a live dialog in trying/proceeding/early whose direction is recipient (or not given):
//            the extension is being called; the caller is shown. Ringing wins over a call in
//            progress, so an attendant sees a waiting call.
//   hold     confirmed dialogs only, all on hold: the local target carries +sip.rendering=no
//            (RFC 4235 §4.1.6.2, RFC 3840), or presence says on-the-phone with a note mentioning hold
//   busy     a confirmed dialog
//   calling  a live dialog in trying/proceeding/early with direction initiator
//   offline  no live dialog and presence basic is closed (nobody there)
//   busy     no live dialog but presence says on-the-phone (a phone that publishes only presence)
//   idle     otherwise

export const STATES = Object.freeze(['idle', 'ringing', 'calling', 'busy', 'hold', 'offline', 'unknown']);

const NS_DIALOG = 'urn:ietf:params:xml:ns:dialog-info';
const NS_PIDF = 'urn:ietf:params:xml:ns:pidf';
const NS_HUB = 'urn:x-presencehub:dialog';

// The page enforces Trusted Types (see web.go's CSP), which covers DOMParser too. NOTIFY bodies
// are parsed as application/xml into an inert document that is read, never inserted or run, so
// this one named policy passes them through; every other DOM sink stays closed.
let xmlPolicy = null;

function trustedXml(text) {
  const tt = globalThis.trustedTypes;
  if (!tt) return text;
  xmlPolicy ??= tt.createPolicy('presencehub-xml', { createHTML: (s) => s });
  return xmlPolicy.createHTML(text);
}

/** Parses XML text with DOMParser; throws when it is not well-formed. */
export function parseXml(text, Parser = globalThis.DOMParser) {
  const doc = new Parser().parseFromString(trustedXml(text), 'application/xml');
  if (doc.getElementsByTagName('parsererror').length > 0) throw new Error('blf: malformed XML');
  return doc;
}

/**
 * Reads a dialog-info document (RFC 4235 §4.1):
 * {version, full, entity, dialogs: [{id, callId, direction, state, since, local, remote}]},
 * local/remote: {identity, display, target, rendering}; since: epoch ms from the hub's
 * <since xmlns="urn:x-presencehub:dialog"> (when the dialog entered its state), or null.
 */
export function readDialogInfo(doc) {
  const root = doc.documentElement;
  if (!root || root.localName !== 'dialog-info' || root.namespaceURI !== NS_DIALOG) {
    throw new Error('blf: not a dialog-info document');
  }
  const dialogs = children(root, 'dialog').map((el) => {
    const state = children(el, 'state')[0];
    return {
      id: el.getAttribute('id') || '',
      callId: el.getAttribute('call-id') || '',
      direction: (el.getAttribute('direction') || '').toLowerCase(),
      state: text(state).toLowerCase(),
      since: sinceOf(Array.from(el.children).find((c) => c.localName === 'since' && c.namespaceURI === NS_HUB)),
      local: participant(children(el, 'local')[0]),
      remote: participant(children(el, 'remote')[0]),
    };
  });
  return {
    version: Number(root.getAttribute('version') || 0),
    full: (root.getAttribute('state') || 'full') === 'full',
    entity: root.getAttribute('entity') || '',
    dialogs,
  };
}

function participant(el) {
  if (!el) return { identity: '', display: '', target: '', rendering: '' };
  const id = children(el, 'identity')[0];
  const target = children(el, 'target')[0];
  let rendering = '';
  if (target) {
    for (const p of children(target, 'param')) {
      if ((p.getAttribute('pname') || '').toLowerCase() === '+sip.rendering') {
        rendering = (p.getAttribute('pvalue') || '').replace(/"/g, '').toLowerCase();
      }
    }
    // Also the Contact feature-tag form inside the URI: sip:a@b;+sip.rendering="no".
    const m = /;\+sip\.rendering="?([a-z]+)"?/i.exec(target.getAttribute('uri') || '');
    if (!rendering && m) rendering = m[1].toLowerCase();
  }
  return {
    identity: text(id),
    display: id ? (id.getAttribute('display') || '') : '',
    target: target ? (target.getAttribute('uri') || '') : '',
    rendering,
  };
}

/**
 * Applies a new dialog-info document to the previous one of the same subscription (RFC 4235
 * §4.1): a full document replaces it; a partial one updates dialogs by id; an older or equal
 * version is stale and ignored. Returns the current document.
 */
export function mergeDialogInfo(prev, next) {
  if (prev && next.version <= prev.version) return prev;
  if (next.full || !prev) return { ...next, dialogs: next.dialogs.filter(live) };
  const byId = new Map(prev.dialogs.map((d) => [d.id, d]));
  for (const d of next.dialogs) byId.set(d.id, d);
  return { ...next, full: true, dialogs: [...byId.values()].filter(live) };
}

/**
 * Reads a PIDF document (RFC 3863): {basic, activities, note}. basic is 'open' when any tuple is
 * open, 'closed' when tuples exist and none is, '' without tuples. activities are RPID activity
 * names (RFC 4480 §3.2) such as 'on-the-phone'. note: the first person note, else tuple note,
 * else document note.
 */
export function readPidf(doc) {
  const root = doc.documentElement;
  if (!root || root.localName !== 'presence' || root.namespaceURI !== NS_PIDF) {
    throw new Error('blf: not a PIDF document');
  }
  const basics = children(root, 'tuple')
    .map((t) => text(children(children(t, 'status')[0], 'basic')[0]).toLowerCase())
    .filter(Boolean);
  let basic = '';
  if (basics.length) basic = basics.includes('open') ? 'open' : 'closed';
  const activities = [];
  for (const a of Array.from(root.getElementsByTagNameNS('*', 'activities'))) {
    for (const c of Array.from(a.children)) {
      if (c.localName !== 'note' && !activities.includes(c.localName)) activities.push(c.localName);
    }
  }
  const notes = [];
  for (const where of ['person', 'tuple']) {
    for (const el of children(root, where)) notes.push(...children(el, 'note').map(text));
  }
  notes.push(...children(root, 'note').map(text));
  return { basic, activities, note: notes.find(Boolean) || '' };
}

/**
 * Decides a lamp from the current dialog-info (null when unknown) and PIDF (null when unknown)
 * of one extension: {state, peer, note, dialog}. peer names the other party of the call that
 * decided the state (the caller while ringing); dialog is that call's dialog (null without one),
 * for its id and duration; note is the presence note.
 */
export function lampOf(dialogInfo, presence) {
  const note = presence ? presence.note : '';
  if (!dialogInfo) return { state: 'unknown', peer: '', note, dialog: null };
  const domain = (dialogInfo.entity.split('@')[1] || '').replace(/[;>].*$/, '');
  const peerName = (d) => peerOf(d, domain);
  const dialogs = dialogInfo.dialogs.filter(live);
  const early = (d) => d.state === 'trying' || d.state === 'proceeding' || d.state === 'early';
  const ringing = dialogs.find((d) => early(d) && d.direction !== 'initiator');
  if (ringing) return { state: 'ringing', peer: peerName(ringing), note, dialog: ringing };
  const confirmed = dialogs.filter((d) => d.state === 'confirmed');
  if (confirmed.length) {
    const presenceHold = onThePhone(presence) && /\bhold\b/i.test(note);
    const talking = confirmed.find((d) => d.local.rendering !== 'no');
    if (!talking || presenceHold) return { state: 'hold', peer: peerName(confirmed[0]), note, dialog: confirmed[0] };
    return { state: 'busy', peer: peerName(talking), note, dialog: talking };
  }
  const calling = dialogs.find(early);
  if (calling) return { state: 'calling', peer: peerName(calling), note, dialog: calling };
  if (presence && presence.basic === 'closed') return { state: 'offline', peer: '', note, dialog: null };
  if (onThePhone(presence)) return { state: /\bhold\b/i.test(note) ? 'hold' : 'busy', peer: '', note, dialog: null };
  return { state: 'idle', peer: '', note, dialog: null };
}

/**
 * A readable name for a dialog's remote party: 'Display (user)', the display name alone, or the
 * URI without "sip:" and parameters; "@domain" is left out when it is the watched entity's own.
 */
export function peerOf(d, domain = '') {
  const r = d.remote || {};
  let uri = (r.identity || r.target || '').replace(/^sips?:/i, '').replace(/[;?].*$/, '');
  const own = `@${domain}`.toLowerCase();
  if (domain && uri.toLowerCase().endsWith(own)) uri = uri.slice(0, -own.length);
  if (r.display && uri) return `${r.display} (${uri})`;
  return r.display || uri;
}

function onThePhone(presence) {
  return !!presence && presence.activities.includes('on-the-phone');
}

function live(d) { return d.state !== 'terminated'; }

function children(el, name) {
  if (!el) return [];
  return Array.from(el.children).filter((c) => c.localName === name);
}

function sinceOf(el) {
  const t = el ? Date.parse(text(el)) : NaN;
  return Number.isFinite(t) ? t : null;
}

function text(el) { return el ? el.textContent.trim() : ''; }
