// app.js: the console page. Wires settings (token, extensions), the SIP subscriber and the
// lamp grid together, and shows the connection state. The console holds one RFC 5367 list
// subscription per event package (dialog, presence, message-summary) for all its lamps and reads
// the RFC 4662 NOTIFYs with rlmi.js. A lamp shows state only while the dialog list subscription
// is current and its member is known; everything else is "unknown", never old state.

import { lampOf } from './blf.js';
import { LampGrid } from './lamps.js';
import { ResourceList, parseListNotify } from './rlmi.js';
import {
  formatExtensions, loadExtensions, parseExtensions, saveExtensions, saveToken, takeToken,
  tokenClaims, tokenExpired,
} from './settings.js';
import { Subscriber } from './sipws.js';

const $ = (id) => document.getElementById(id);
const els = {
  conn: $('conn'), connText: $('conn-text'), reconnect: $('reconnect'), who: $('who'),
  tokenSection: $('token-section'), tokenForm: $('token-form'), tokenInput: $('token-input'),
  lamps: $('lamps'), empty: $('empty'), setup: $('setup'), extForm: $('ext-form'),
  extInput: $('ext-input'), extError: $('ext-error'), announce: $('announce'),
  search: $('search'), searchCount: $('search-count'),
};

const grid = new LampGrid(els.lamps, els.announce);
let extensions = loadExtensions();
let token = takeToken();
let subscriber = null;
let countdown = null;
// ext -> {dialog, presence, presenceDue, voicemail, reason, why, display, calls}: the current,
// parsed state of each extension; reason is the short text shown on an unknown lamp, why the
// hub's own words; calls: dialog id -> {state, since} for the call timer.
const current = new Map();
// event package -> ResourceList of the live list subscription (rlmi.js).
const lists = new Map();
// The hub's domain, for member URIs (sip:<ext>@<domain>).
let domain = location.hostname;

showExtensions();
connect();

function connect() {
  if (subscriber) subscriber.stop();
  subscriber = null;
  const claims = tokenClaims(token);
  if (!token || !claims || !claims.sub) {
    needToken(token ? 'That token cannot be read. Paste the token presencehub printed.' : '');
    return;
  }
  if (tokenExpired(claims)) {
    needToken('This token has expired. Open a fresh console link (presencehub prints one) or paste a new token.');
    return;
  }
  els.tokenSection.hidden = true;
  domain = claims.domain || location.hostname;
  els.who.textContent = `Watching as ${claims.sub}@${domain}`;
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = `access_token=${encodeURIComponent(token)}`;
  subscriber = new Subscriber({ url: url.href, user: claims.sub, domain, displayName: 'presencehub console', lists: true });
  subscriber.addEventListener('status', (e) => onStatus(e.detail, claims));
  subscriber.addEventListener('update', (e) => onUpdate(e.detail));
  subscriber.watch(extensions.map((x) => x.ext));
  subscriber.start();
}

function onStatus({ state, retryAt, reason }, claims) {
  clearInterval(countdown);
  countdown = null;
  els.conn.dataset.conn = state;
  els.reconnect.hidden = state !== 'reconnecting';
  if (state === 'reconnecting' && tokenExpired(claims)) {
    subscriber.stop();
    needToken('The token has expired. Open a fresh console link (presencehub prints one) or paste a new token.');
    return;
  }
  if (state === 'connected') {
    els.connText.textContent = 'Connected';
  } else if (state === 'connecting') {
    els.connText.textContent = 'Connecting…';
  } else if (state === 'reconnecting') {
    const tick = () => {
      const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      els.connText.textContent = `Disconnected: reconnecting in ${s} s`;
    };
    tick();
    countdown = setInterval(tick, 1000);
    els.conn.title = reason || '';
  } else {
    els.connText.textContent = 'Not connected';
  }
  if (state !== 'reconnecting') els.conn.title = '';
}

// onUpdate takes a list subscription's news: a NOTIFY body (RFC 4662 multipart/related), or
// null when the subscription has no current state (subscribing, retrying, failed, offline).
function onUpdate({ exts, event, body, contentType, state, reason, retryAt }) {
  if (!exts) return;
  const quiet = !subscriber || subscriber.state !== 'connected';
  if (body === null) {
    lists.delete(event);
    for (const ext of exts) {
      const cur = current.get(ext);
      if (!cur) continue;
      if (event === 'dialog') {
        cur.dialog = null;
        cur.reason = reasonText(state, reason, retryAt);
        cur.why = reason || '';
      } else if (event === 'presence') {
        cur.presence = null;
        // Until the first presence NOTIFY is in, an extension without calls could be idle or
        // offline: wait for it rather than flash green (unless that subscription is in trouble).
        cur.presenceDue = state === 'subscribing';
      } else cur.voicemail = null;
      render(ext, quiet);
    }
    return;
  }
  let list = lists.get(event);
  if (!list) lists.set(event, list = new ResourceList());
  let r;
  try {
    r = list.apply(parseListNotify(body, contentType));
  } catch (err) {
    // An unreadable NOTIFY leaves the list incomplete: ask for full state.
    lists.delete(event);
    subscriber.resync(event);
    console.warn(`presencehub: ${event} list NOTIFY not understood: ${err.message}`);
    return;
  }
  if (r.resync) subscriber.resync(event); // a NOTIFY was missed (RFC 4662 §5.2 version gap)
  const now = Date.now();
  for (const uri of r.changed) {
    const ext = extOf(uri);
    const cur = current.get(ext);
    if (cur) {
      applyMember(cur, event, list.get(uri), now);
      render(ext, quiet);
    }
  }
}

// applyMember sets one extension's state from its list member (rlmi.js ResourceList): active
// with its document; pending (nothing was ever published: no calls, nobody there); terminated
// (not allowed, or gone: no state).
function applyMember(cur, event, m, now) {
  if (event === 'dialog') {
    cur.reason = '';
    cur.why = '';
    if (m.state === 'active' && m.doc) cur.dialog = m.doc;
    else if (m.state === 'pending') cur.dialog = { version: 0, full: true, entity: m.uri, dialogs: [] };
    else {
      cur.dialog = null;
      cur.reason = m.state === 'terminated' ? `Cannot watch: ${failureText(m.reason)}` : '';
      cur.why = m.reason || '';
    }
    if (cur.dialog) {
      const d = displayOf(cur.dialog);
      if (d) cur.display = d;
      trackCalls(cur, now);
    } else cur.calls.clear();
  } else if (event === 'presence') {
    cur.presenceDue = false;
    if (m.state === 'active' && m.doc) cur.presence = m.doc;
    else if (m.state === 'pending') cur.presence = { basic: 'closed', activities: [], note: '' };
    else cur.presence = null;
  } else if (event === 'message-summary') {
    const voice = m.state === 'active' && m.doc ? m.doc.messages.voice : null;
    cur.voicemail = voice ? { new: voice.new, old: voice.old } : (m.doc && m.doc.waiting ? { new: 1, old: 0 } : null);
  }
}

// trackCalls keeps, per live dialog, when it entered its current state: the hub's stamp
// (<since xmlns="urn:x-presencehub:dialog">, docs/protocol.md) when the document carries it,
// else <duration> (RFC 4235 §4.1.3: seconds since the dialog was created), else when the
// console first saw that state.
function trackCalls(cur, now) {
  const seen = new Map();
  for (const d of cur.dialog.dialogs) {
    const prev = cur.calls.get(d.id);
    let since = prev && prev.state === d.state ? prev.since : now;
    if (d.since !== null && d.since !== undefined) since = d.since;
    else if (d.duration !== null && d.duration !== undefined) since = now - d.duration * 1000;
    seen.set(d.id, { state: d.state, since });
  }
  cur.calls = seen;
}

function extOf(uri) {
  const m = /^sips?:([^@;>]+)@/i.exec(uri);
  return m ? decodeURIComponent(m[1]) : uri;
}

function render(ext, quiet = false) {
  const cur = current.get(ext);
  const lamp = lampOf(cur.presenceDue ? null : cur.dialog, cur.presence);
  const call = lamp.dialog ? cur.calls.get(lamp.dialog.id) : null;
  grid.set(ext, {
    state: lamp.state, peer: lamp.peer, note: lamp.note, since: call ? call.since : 0,
    reason: cur.reason, why: cur.why, display: cur.display, voicemail: cur.voicemail,
  }, quiet);
}

function reasonText(state, reason, retryAt) {
  switch (state) {
    case 'subscribing': return 'Subscribing…';
    case 'pending': return 'Waiting for the hub to allow the subscription';
    case 'retrying': return `Retrying at ${new Date(retryAt).toLocaleTimeString()}${reason ? ` (${reason})` : ''}`;
    case 'failed': return `Cannot watch: ${failureText(reason)}`;
    case 'offline': return 'Not connected to the hub';
    default: return reason || '';
  }
}

// failureText says briefly why a subscription was refused for good: a SIP status
// ('403 Forbidden - ...') or a Subscription-State reason (RFC 6665 §4.1.3).
function failureText(reason = '') {
  const known = {
    401: 'token refused (401)', 403: 'not allowed (403)', 404: 'no such extension (404)',
    489: 'not supported by the hub (489)', rejected: 'not allowed', noresource: 'no such extension',
    invariant: 'the hub will not report it',
  };
  const code = /^(\d{3})\b/.exec(reason);
  return known[code ? code[1] : reason] || reason || 'refused';
}

// The watched extension's own name, from dialog-info <local><identity display=...>.
function displayOf(info) {
  for (const d of info.dialogs) if (d.local.display) return d.local.display;
  return '';
}

function showExtensions() {
  for (const { ext } of extensions) {
    if (!current.has(ext)) {
      current.set(ext, {
        dialog: null, presence: null, presenceDue: false, voicemail: null, reason: '', why: '', display: '', calls: new Map(),
      });
    }
  }
  for (const ext of [...current.keys()]) {
    if (!extensions.some((x) => x.ext === ext)) current.delete(ext);
  }
  grid.setExtensions(extensions);
  for (const { ext } of extensions) render(ext, true);
  els.empty.hidden = extensions.length > 0;
  els.extInput.value = formatExtensions(extensions);
  showCount();
  if (!extensions.length) els.setup.open = true;
}

function needToken(message) {
  els.tokenSection.hidden = false;
  els.conn.dataset.conn = 'stopped';
  els.connText.textContent = 'Not connected';
  els.reconnect.hidden = true;
  $('token-message').textContent = message ||
    'Open the console link that presencehub prints when it starts, or paste an access token here.';
  for (const { ext } of extensions) {
    const cur = current.get(ext);
    cur.dialog = cur.presence = null;
    cur.reason = 'Not connected to the hub';
    render(ext, true);
  }
}

function showCount() {
  const shown = grid.setFilter(els.search.value);
  els.searchCount.textContent = els.search.value.trim() ? `${shown} of ${extensions.length} shown` : `${extensions.length} extensions`;
}

els.search.addEventListener('input', showCount);
$('search-form').addEventListener('submit', (e) => e.preventDefault());

els.reconnect.addEventListener('click', () => subscriber && subscriber.reconnectNow());

els.tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  token = els.tokenInput.value.trim();
  els.tokenInput.value = '';
  saveToken(token);
  connect();
});

els.extForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const { list, errors } = parseExtensions(els.extInput.value);
  els.extError.textContent = errors.join('; ');
  if (errors.length) {
    els.extInput.setAttribute('aria-invalid', 'true');
    return;
  }
  els.extInput.removeAttribute('aria-invalid');
  const same = list.length === extensions.length && list.every((x, i) => x.ext === extensions[i].ext);
  extensions = list;
  saveExtensions(list);
  showExtensions();
  if (subscriber && !same) subscriber.watch(list.map((x) => x.ext));
});

// Leaving the page ends the subscriptions at once rather than letting them time out on the hub;
// a page restored from the back/forward cache connects again.
addEventListener('pagehide', () => subscriber && subscriber.stop());
addEventListener('pageshow', (e) => { if (e.persisted && subscriber) subscriber.start(); });
addEventListener('online', () => subscriber && subscriber.reconnectNow());
