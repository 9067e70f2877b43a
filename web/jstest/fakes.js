// Test doubles for sipws.js: a WebSocket that records what is sent, and a clock with timers
// that run only when the test advances it.

export class FakeClock {
  constructor() {
    this.t = 1_000_000;
    this.seq = 0;
    this.timers = new Map(); // id -> {at, fn}
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
    this.now = () => this.t;
  }

  /** Runs every timer due within ms, in time order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, tm] of this.timers) {
        if (tm.at <= end && (!next || tm.at < next[1].at || (tm.at === next[1].at && id < next[0]))) next = [id, tm];
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

export function fakeWebSocketClass() {
  class FakeWebSocket {
    constructor(url, protocol) {
      this.url = url;
      this.requested = protocol;
      this.protocol = '';
      this.readyState = 0;
      this.sent = [];
      this.closed = null;
      this.autoPong = true;
      FakeWebSocket.all.push(this);
    }

    // Like the hub (wsproto), a CRLF ping is answered with a CRLF pong unless autoPong is off.
    send(text) {
      this.sent.push(text);
      if (text === '\r\n\r\n' && this.autoPong) this.receive('\r\n');
    }

    close(code, reason) { this.closed = { code, reason }; this.readyState = 3; }

    // test side
    open(protocol = 'sip') { this.protocol = protocol; this.readyState = 1; this.onopen?.({}); }

    receive(text) { this.onmessage?.({ data: text }); }

    drop(code = 1006) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }

    /** Sent SIP messages (not keepalives), removed from the queue. */
    take() {
      const out = this.sent.filter((s) => s.trim() !== '');
      this.sent = [];
      return out;
    }
  }
  FakeWebSocket.all = [];
  return FakeWebSocket;
}
