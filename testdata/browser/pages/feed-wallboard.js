// A wallboard on the hub's state feed with EventSource and nothing else (the README's example,
// with data attributes for the test): every lamp is [data-ext][data-state]. Driven by
// web/feed_browser_test.go through window.board.
const lamps = document.querySelector('.lamps');
const items = new Map();
const conn = document.getElementById('conn');

function show(r) {
  let li = items.get(r.ext);
  if (!li) {
    li = lamps.appendChild(document.createElement('li'));
    li.dataset.ext = r.ext;
    items.set(r.ext, li);
  }
  li.dataset.state = r.lamp;
  li.setAttribute('aria-label', `${r.ext} ${r.lamp}`);
  li.textContent = `${r.ext}: ${r.lamp}${r.peer ? ` ${r.peer}` : ''}${r.presence?.note ? ` (${r.presence.note})` : ''}`;
}

window.board = {
  events: [], // [{type, id, lamps}] as received
  start(url) {
    const feed = new EventSource(url);
    this.feed = feed;
    feed.onopen = () => { conn.textContent = 'connected'; };
    feed.onerror = () => { conn.textContent = `error, readyState ${feed.readyState}`; };
    feed.addEventListener('snapshot', (e) => {
      const snap = JSON.parse(e.data);
      snap.resources.forEach(show);
      this.events.push({ type: 'snapshot', id: e.lastEventId, lamps: snap.resources.map((r) => `${r.ext}:${r.lamp}`) });
    });
    feed.addEventListener('state', (e) => {
      const r = JSON.parse(e.data);
      show(r);
      this.events.push({ type: 'state', id: e.lastEventId, lamps: [`${r.ext}:${r.lamp}`] });
    });
    return true;
  },
  stop() { this.feed?.close(); return true; },
};
