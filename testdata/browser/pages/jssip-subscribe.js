// A BLF key as an application would write it with JsSIP 3.13: ua.subscribe() on the dialog
// package of one extension. Every NOTIFY is recorded in window.watcher.notifies with the state
// of its first dialog ('idle' when it has none).

const { JsSIP } = window;

function stateOf(body) {
  const doc = new DOMParser().parseFromString(body || '', 'application/xml');
  const st = doc.getElementsByTagNameNS('urn:ietf:params:xml:ns:dialog-info', 'state')[0];
  return st ? st.textContent.trim() : 'idle';
}

window.watcher = {
  notifies: [],
  terminated: null,
  start({ url, user, domain, target }) {
    const w = window.watcher;
    return new Promise((resolve) => {
      const ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(url)],
        uri: `sip:${user}@${domain}`,
        register: false,
        user_agent: 'JsSIP-browser-test',
      });
      ua.on('connected', () => {
        const s = ua.subscribe(`sip:${target}@${domain}`, 'dialog', 'application/dialog-info+xml', { expires: 600 });
        s.on('notify', (isFinal, request, body) => {
          w.notifies.push({ final: isFinal, subState: request.getHeader('Subscription-State'), state: stateOf(body) });
        });
        s.on('terminated', (code, reason) => { w.terminated = { code, reason }; });
        s.subscribe();
        w.subscriber = s;
        resolve('subscribing');
      });
      w.ua = ua;
      ua.start();
    });
  },
  states() {
    return window.watcher.notifies.map((n) => n.state);
  },
};
