// app.js: the console page. Wires settings (token, extensions), the SIP subscriber and the
// lamp grid together, and shows the connection state. A lamp shows state only while its dialog
// subscription is current; everything else is "unknown", never old state.

import { lampOf, mergeDialogInfo, parseXml, readDialogInfo, readPidf } from './blf.js';
import { LampGrid } from './lamps.js';
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
};

const grid = new LampGrid(els.lamps, els.announce);
let extensions = loadExtensions();
let token = takeToken();
let subscriber = null;
let countdown = null;
// ext -> {dialog, presence, presenceDue, reason, why, display}: the current, parsed state of
// each extension; reason is the short text shown on an unknown lamp, why the hub's own words.
const current = new Map();

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
  const domain = claims.domain || location.hostname;
  els.who.textContent = `Watching as ${claims.sub}@${domain}`;
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = `access_token=${encodeURIComponent(token)}`;
  subscriber = new Subscriber({ url: url.href, user: claims.sub, domain, displayName: 'presencehub console' });
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

function onUpdate({ ext, event, body, state, reason, retryAt }) {
  const cur = current.get(ext);
  if (!cur) return;
  try {
    if (event === 'dialog') {
      cur.dialog = body === null ? null : mergeDialogInfo(cur.dialog, readDialogInfo(parseXml(body)));
      if (cur.dialog) cur.display = displayOf(cur.dialog);
    } else if (event === 'presence') {
      cur.presence = body === null ? null : readPidf(parseXml(body));
      // Until the first presence NOTIFY is in, an extension without calls could be idle or
      // offline: wait for it rather than flash green (unless that subscription is in trouble).
      cur.presenceDue = body === null && state === 'subscribing';
    }
  } catch (err) {
    if (event === 'dialog') cur.dialog = null;
    else cur.presence = null;
    reason = err.message;
  }
  if (event === 'dialog') {
    cur.reason = reasonText(state, reason, retryAt);
    cur.why = reason || '';
  }
  render(ext, subscriber && subscriber.state !== 'connected');
}

function render(ext, quiet = false) {
  const cur = current.get(ext);
  const lamp = lampOf(cur.presenceDue ? null : cur.dialog, cur.presence);
  grid.set(ext, { ...lamp, reason: cur.reason, why: cur.why, display: cur.display }, quiet);
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
    if (!current.has(ext)) current.set(ext, { dialog: null, presence: null, presenceDue: false, reason: '', why: '', display: '' });
  }
  for (const ext of [...current.keys()]) {
    if (!extensions.some((x) => x.ext === ext)) current.delete(ext);
  }
  grid.setExtensions(extensions);
  for (const { ext } of extensions) render(ext, true);
  els.empty.hidden = extensions.length > 0;
  els.extInput.value = formatExtensions(extensions);
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
  extensions = list;
  saveExtensions(list);
  showExtensions();
  if (subscriber) subscriber.watch(list.map((x) => x.ext));
});

// Leaving the page ends the subscriptions at once rather than letting them time out on the hub;
// a page restored from the back/forward cache connects again.
addEventListener('pagehide', () => subscriber && subscriber.stop());
addEventListener('pageshow', (e) => { if (e.persisted && subscriber) subscriber.start(); });
addEventListener('online', () => subscriber && subscriber.reconnectNow());
