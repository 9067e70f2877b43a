// lamps.js: the lamp grid. One focusable list item per watched extension, with stable test hooks
// (data-ext, data-state), a readable aria-label, and a polite live region that announces changes.

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

export class LampGrid {
  /**
   * @param {HTMLElement} list     the <ul> that holds the lamps
   * @param {HTMLElement} announce a visually hidden live region (role=log)
   */
  constructor(list, announce) {
    this.list = list;
    this.announce = announce;
    this.lamps = new Map(); // ext -> {el, parts, label, lamp}
    this._pending = [];
    this._flush = null;
    list.addEventListener('keydown', (e) => this._key(e));
  }

  /** Shows these extensions ([{ext, label}]) in this order; lamps of kept ones keep their state. */
  setExtensions(list) {
    const keep = new Map();
    for (const { ext, label } of list) {
      let l = this.lamps.get(ext);
      if (!l) l = this._create(ext);
      l.label = label;
      keep.set(ext, l);
      this.list.append(l.el); // (re)orders
      this._render(l);
    }
    for (const [ext, l] of this.lamps) if (!keep.has(ext)) l.el.remove();
    this.lamps = keep;
  }

  /**
   * Sets a lamp: {state, peer, note, reason, display}. reason explains an unknown lamp;
   * display is the extension's own display name from dialog-info, used when it has no label.
   * quiet: do not announce (used when the whole grid goes unknown with the connection).
   */
  set(ext, lamp, quiet = false) {
    const l = this.lamps.get(ext);
    if (!l) return;
    const before = l.lamp.state;
    l.lamp = { ...l.lamp, ...lamp };
    this._render(l);
    // Changes are announced, except to unknown (the connection status says why) and from
    // unknown after a (re)connect, when only a ringing lamp is worth interrupting for.
    const after = l.lamp.state;
    if (!quiet && before !== after && after !== 'unknown' && (before !== 'unknown' || after === 'ringing')) {
      this._say(`${nameOf(l)}: ${describe(l.lamp)}`);
    }
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
    for (const name of ['name', 'ext', 'state', 'detail', 'note']) {
      const s = document.createElement('span');
      s.className = `lamp-${name}`;
      s.setAttribute('aria-hidden', 'true'); // the aria-label on the item says it all at once
      body.append(s);
      parts[name] = s;
    }
    const l = { el, parts, label: '', lamp: { state: 'unknown', peer: '', note: '', reason: '', display: '' } };
    this.lamps.set(ext, l);
    return l;
  }

  _render(l) {
    const { el, parts, lamp } = l;
    const ext = el.dataset.ext;
    el.dataset.state = lamp.state;
    parts.name.textContent = nameOf(l);
    parts.ext.textContent = nameOf(l) === ext ? '' : ext;
    parts.state.textContent = STATE_TEXT[lamp.state] || lamp.state;
    parts.detail.textContent = detailOf(lamp);
    parts.note.textContent = lamp.note || '';
    el.title = lamp.state === 'unknown' && lamp.why ? lamp.why : '';
    const who = nameOf(l) === ext ? `Extension ${ext}` : `${nameOf(l)}, extension ${ext}`;
    el.setAttribute('aria-label', `${who}: ${describe(lamp)}`);
  }

  // Announcements are batched for a moment, so a burst (a reconnect) is read as one message.
  _say(text) {
    this._pending.push(text);
    if (this._flush) return;
    this._flush = setTimeout(() => {
      this._flush = null;
      const p = document.createElement('p');
      p.textContent = this._pending.join('. ');
      this._pending = [];
      this.announce.append(p);
      while (this.announce.childElementCount > ANNOUNCE_KEEP) this.announce.firstElementChild.remove();
    }, 250);
  }

  // Arrow keys move between lamps (Up/Down by a row of the grid), Home/End to the ends.
  _key(e) {
    const items = [...this.list.children];
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

function nameOf(l) {
  return l.label || l.lamp.display || l.el.dataset.ext;
}

function detailOf(lamp) {
  if (lamp.state === 'unknown') return lamp.reason || '';
  if (!lamp.peer) return '';
  return `${DETAIL_PREFIX[lamp.state] || ''} ${lamp.peer}`.trim();
}

/** One sentence for screen readers: state, the other party, the note. */
export function describe(lamp) {
  let s = (STATE_TEXT[lamp.state] || lamp.state).toLowerCase();
  const detail = detailOf(lamp);
  if (detail) s += `, ${lamp.state === 'unknown' ? detail : detail.charAt(0).toLowerCase() + detail.slice(1)}`;
  if (lamp.note) s += `, note: ${lamp.note}`;
  return s;
}
