// lamps.js: the lamp grid. One focusable list item per watched extension, with stable test hooks
// (data-ext, data-state), a readable aria-label, and a polite live region that announces changes.
// Extensions may be grouped (a heading row per group) and filtered by a search text. Changes are
// drawn once per animation frame, however many arrive, so a storm of changes on hundreds of
// lamps costs one layout per frame.

export const STATE_TEXT = Object.freeze({
  idle: 'Idle',
  ringing: 'Ringing',
  calling: 'Calling',
  busy: 'Busy',
  hold: 'On hold',
  offline: 'Offline',
  unknown: 'Unknown',
});

const DETAIL_PREFIX = { ringing: 'Call from', calling: 'Calling', busy: 'With', hold: 'Holding' };
const ANNOUNCE_KEEP = 20;
const ANNOUNCE_MAX = 5; // changes named in one announcement; the rest are counted
const TIMED = new Set(['ringing', 'calling', 'busy', 'hold']);

/** A call's running time as m:ss or h:mm:ss. */
export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class LampGrid {
  /**
   * @param {HTMLElement} list     the <ul> that holds the lamps
   * @param {HTMLElement} announce a visually hidden live region (role=log)
   * @param {object} [o] for tests: now (ms clock), raf (requestAnimationFrame)
   */
  constructor(list, announce, o = {}) {
    this.list = list;
    this.announce = announce;
    this.lamps = new Map(); // ext -> {el, parts, label, group, lamp, shown}
    this.heads = new Map(); // group -> <li> heading
    this.filter = '';
    this._now = o.now || (() => Date.now());
    this._raf = o.raf || ((f) => requestAnimationFrame(f));
    this._dirty = new Set();
    this._frame = false;
    this._timed = new Set(); // exts whose lamp shows a running timer
    this._pending = [];
    this._flush = null;
    this._ticker = setInterval(() => this._tick(), 1000);
    list.addEventListener('keydown', (e) => this._key(e));
  }

  /** Shows these extensions ([{ext, label, group}]) in this order; kept ones keep their state. */
  setExtensions(list) {
    const keep = new Map();
    const heads = new Map();
    const frag = document.createDocumentFragment();
    let group = null;
    for (const { ext, label, group: g = '' } of list) {
      if (g !== group && (g || group !== null)) {
        let h = this.heads.get(g);
        if (!h) {
          h = document.createElement('li');
          h.className = 'group';
          h.setAttribute('role', 'presentation');
          h.dataset.group = g;
          h.textContent = g || 'Other';
        }
        heads.set(g, h);
        frag.append(h);
      }
      group = g;
      let l = this.lamps.get(ext);
      if (!l) l = this._create(ext);
      l.label = label;
      l.group = g;
      keep.set(ext, l);
      frag.append(l.el);
      this._render(l);
    }
    for (const [ext, l] of this.lamps) if (!keep.has(ext)) { l.el.remove(); this._timed.delete(ext); }
    for (const [g, h] of this.heads) if (!heads.has(g)) h.remove();
    this.list.append(frag); // (re)orders
    this.lamps = keep;
    this.heads = heads;
    this.setFilter(this.filter);
  }

  /**
   * Shows only the lamps whose name, extension, group, state or other party contains text
   * (case-insensitive); returns how many are shown.
   */
  setFilter(text) {
    this.filter = String(text || '').trim().toLowerCase();
    let shown = 0;
    const groupsShown = new Set();
    for (const l of this.lamps.values()) {
      const show = this._matches(l);
      l.el.hidden = !show;
      if (show) { shown++; groupsShown.add(l.group); }
    }
    for (const [g, h] of this.heads) h.hidden = !groupsShown.has(g);
    return shown;
  }

  _matches(l) {
    if (!this.filter) return true;
    const hay = `${nameOf(l)} ${l.el.dataset.ext} ${l.group} ${STATE_TEXT[l.lamp.state]} ${l.lamp.peer}`.toLowerCase();
    return hay.includes(this.filter);
  }

  /**
   * Sets a lamp: {state, peer, note, reason, display, since, voicemail}. reason explains an
   * unknown lamp; display is the extension's own display name from dialog-info, used when it
   * has no label; since (epoch ms) starts the call timer; voicemail: {new, old} or null.
   * quiet: do not announce (used when the whole grid goes unknown with the connection).
   * The lamp is drawn at the next animation frame.
   */
  set(ext, lamp, quiet = false) {
    const l = this.lamps.get(ext);
    if (!l) return;
    const before = l.lamp.state;
    l.lamp = { ...l.lamp, ...lamp };
    this._dirty.add(l);
    if (!this._frame) {
      this._frame = true;
      this._raf(() => this._draw());
    }
    // Changes are announced, except to unknown (the connection status says why) and from
    // unknown after a (re)connect, when only a ringing lamp is worth interrupting for.
    const after = l.lamp.state;
    if (!quiet && before !== after && after !== 'unknown' && (before !== 'unknown' || after === 'ringing')) {
      this._say(`${nameOf(l)}: ${describe(l.lamp)}`);
    }
  }

  _draw() {
    this._frame = false;
    const filtering = !!this.filter;
    for (const l of this._dirty) {
      this._render(l);
      if (filtering) l.el.hidden = !this._matches(l);
    }
    this._dirty.clear();
  }

  _create(ext) {
    const el = document.createElement('li');
    el.className = 'lamp';
    el.tabIndex = 0;
    el.dataset.ext = ext;
    const parts = {};
    const light = document.createElement('span');
    light.className = 'lamp-light';
    light.setAttribute('aria-hidden', 'true');
    el.append(light);
    const body = document.createElement('span');
    body.className = 'lamp-body';
    el.append(body);
    for (const name of ['name', 'ext', 'state', 'detail', 'note', 'vm']) {
      const s = document.createElement('span');
      s.className = `lamp-${name}`;
      s.setAttribute('aria-hidden', 'true'); // the aria-label on the item says it all at once
      body.append(s);
      parts[name] = s;
    }
    const timer = document.createElement('span');
    timer.className = 'lamp-timer';
    timer.setAttribute('aria-hidden', 'true');
    parts.state.append(document.createTextNode(''), timer);
    parts.timer = timer;
    const l = { el, parts, label: '', group: '', lamp: { state: 'unknown', peer: '', note: '', reason: '', display: '', since: 0, voicemail: null } };
    this.lamps.set(ext, l);
    return l;
  }

  _render(l) {
    const { el, parts, lamp } = l;
    const ext = el.dataset.ext;
    const name = nameOf(l);
    set(el.dataset, 'state', lamp.state);
    setText(parts.name, name);
    setText(parts.ext, name === ext ? '' : ext);
    if (parts.state.firstChild.data !== (STATE_TEXT[lamp.state] || lamp.state)) parts.state.firstChild.data = STATE_TEXT[lamp.state] || lamp.state;
    setText(parts.detail, detailOf(lamp));
    setText(parts.note, lamp.note || '');
    const vm = lamp.voicemail;
    setText(parts.vm, vm && vm.new > 0 ? `${vm.new} new voicemail${vm.new === 1 ? '' : 's'}` : '');
    if (TIMED.has(lamp.state) && lamp.since) {
      this._timed.add(ext);
      setText(parts.timer, formatDuration(this._now() - lamp.since));
    } else {
      this._timed.delete(ext);
      setText(parts.timer, '');
    }
    const title = lamp.state === 'unknown' && lamp.why ? lamp.why : '';
    if (el.title !== title) el.title = title;
    const who = name === ext ? `Extension ${ext}` : `${name}, extension ${ext}`;
    const label = `${who}: ${describe(lamp)}`;
    if (el.getAttribute('aria-label') !== label) el.setAttribute('aria-label', label);
  }

  // The call timers move once a second; only lamps with a call are touched.
  _tick() {
    const now = this._now();
    for (const ext of this._timed) {
      const l = this.lamps.get(ext);
      if (l && !l.el.hidden) setText(l.parts.timer, formatDuration(now - l.lamp.since));
    }
  }

  // Announcements are batched for a moment, so a burst (a reconnect, a storm) is read as one
  // short message.
  _say(text) {
    this._pending.push(text);
    if (this._flush) return;
    this._flush = setTimeout(() => {
      this._flush = null;
      const p = document.createElement('p');
      const more = this._pending.length - ANNOUNCE_MAX;
      p.textContent = this._pending.slice(0, ANNOUNCE_MAX).join('. ') + (more > 0 ? `. And ${more} more changes` : '');
      this._pending = [];
      this.announce.append(p);
      while (this.announce.childElementCount > ANNOUNCE_KEEP) this.announce.firstElementChild.remove();
    }, 250);
  }

  // Arrow keys move between shown lamps (Up/Down by a row of the grid), Home/End to the ends.
  _key(e) {
    const items = [...this.list.children].filter((el) => el.classList.contains('lamp') && !el.hidden);
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    const cols = Math.max(1, getComputedStyle(this.list).gridTemplateColumns.split(' ').filter(Boolean).length);
    const to = {
      ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols,
      Home: 0, End: items.length - 1,
    }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    items[Math.min(items.length - 1, Math.max(0, to))].focus();
  }
}

// DOM writes only when the value changed: a storm re-renders lamps whose text mostly stays.
function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
function set(obj, k, v) { if (obj[k] !== v) obj[k] = v; }

function nameOf(l) {
  return l.label || l.lamp.display || l.el.dataset.ext;
}

function detailOf(lamp) {
  if (lamp.state === 'unknown') return lamp.reason || '';
  if (!lamp.peer) return '';
  return `${DETAIL_PREFIX[lamp.state] || ''} ${lamp.peer}`.trim();
}

/** One sentence for screen readers: state, the other party, the voicemail count, the note. */
export function describe(lamp) {
  let s = (STATE_TEXT[lamp.state] || lamp.state).toLowerCase();
  const detail = detailOf(lamp);
  if (detail) s += `, ${lamp.state === 'unknown' ? detail : detail.charAt(0).toLowerCase() + detail.slice(1)}`;
  const vm = lamp.voicemail;
  if (vm && vm.new > 0) s += `, ${vm.new} new voicemail${vm.new === 1 ? '' : 's'}`;
  if (lamp.note) s += `, note: ${lamp.note}`;
  return s;
}
