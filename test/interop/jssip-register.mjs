// JsSIP 3.13 UA that registers sip:<user>@<domain> with a JWT and stays registered.
//
//   node jssip-register.mjs --url ws://127.0.0.1:PORT/ws --token JWT --domain hub.test --user 1001
//        [--auth query|bearer|both|none] [--expires 30] [--timeout 60] [--linger 1000]
//
// Events (stdout, one JSON line each), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"start","lib":"jssip",...}
//   {"ev":"connected"} {"ev":"disconnected","code":N}
//   {"ev":"registered","n":1}            first 2xx to REGISTER (again after a reconnect)
//   {"ev":"refreshed","n":2,"expires":E} every later 2xx to a refreshing REGISTER
//   {"ev":"unregistered","cause":...}
//   {"ev":"registrationFailed","status":401,"cause":"Authentication Error"}
//   {"ev":"connectFailed"}  the WebSocket never opened (upgrade refused: see the preceding
//                           {"ev":"ws","state":"error","httpStatus":401})
// Commands (stdin): {"cmd":"unregister"} → un-REGISTER, exit 0 once unregistered;
//   {"cmd":"drop"} → kill the socket (JsSIP reconnects by itself); {"cmd":"quit"} → stop, exit 0.
// Exit: 0 ended as asked, 3 refused (after --linger ms, to show JsSIP does not retry), 4 timeout.

import JsSIP from 'jssip';
import { args, emit, exit, EXIT, installWebSocket, onSip, commands, dropConnection, packageVersion } from './lib/common.mjs';

const a = args();
installWebSocket();

const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(a.wsURL)],
  uri: a.aor,
  display_name: `Ext ${a.user}`,
  authorization_jwt: a.bearer || undefined,
  register: true,
  register_expires: a.expires || 600,
  user_agent: 'JsSIP-interop',
  session_timers: false,
});

emit({ ev: 'start', lib: 'jssip', version: packageVersion('jssip'), aor: a.aor, auth: a.auth });

let registered = false;
let everConnected = false;
let connectFailed = false;
let n2xx = 0;
let wantUnregister = false;
let lastRegister = null;

// A refresh is visible only on the wire: JsSIP emits "registered" once per binding.
onSip((s) => {
  if (s.dir === 'out' && s.method === 'REGISTER') lastRegister = s;
  if (s.dir === 'in' && s.cseqMethod === 'REGISTER' && s.status >= 200 && s.status < 300) {
    const refreshing = lastRegister && lastRegister.expires !== 0 && !/expires=0/.test(lastRegister.contact || '');
    if (refreshing) {
      n2xx++;
      if (registered) emit({ ev: 'refreshed', n: n2xx, expires: s.contactExpires ?? s.expires });
    }
  }
});

ua.on('connected', () => {
  everConnected = true;
  emit({ ev: 'connected' });
});
ua.on('disconnected', (e) => {
  emit({ ev: 'disconnected', code: e && e.code, reason: e && e.reason, error: !!(e && e.error) });
  if (!everConnected && !connectFailed) {
    connectFailed = true;
    emit({ ev: 'connectFailed' });
    ua.stop();
    setTimeout(() => exit(EXIT.REFUSED), a.linger);
  }
});
ua.on('registered', (e) => {
  registered = true;
  emit({ ev: 'registered', n: n2xx, status: e.response && e.response.status_code });
});
ua.on('unregistered', (e) => {
  registered = false;
  emit({ ev: 'unregistered', cause: e && e.cause, status: e && e.response ? e.response.status_code : undefined });
  if (wantUnregister) {
    ua.stop();
    setTimeout(() => exit(EXIT.OK), 100);
  }
});
ua.on('registrationFailed', (e) => {
  emit({ ev: 'registrationFailed', status: e.response ? e.response.status_code : undefined, cause: e.cause });
  // Stay --linger ms: any REGISTER JsSIP sends meanwhile shows up as a "sip" event.
  setTimeout(() => {
    ua.stop();
    exit(EXIT.REFUSED);
  }, a.linger);
});

commands(
  async (c) => {
    switch (c.cmd) {
      case 'unregister':
        wantUnregister = true;
        if (!registered) {
          emit({ ev: 'unregistered', cause: 'not registered' });
          ua.stop();
          setTimeout(() => exit(EXIT.OK), 100);
          return;
        }
        ua.unregister();
        return;
      case 'drop':
        dropConnection();
        return;
      case 'quit':
        ua.stop();
        setTimeout(() => exit(EXIT.OK), 100);
        return;
      default:
        emit({ ev: 'error', message: `unknown command ${c.cmd}` });
    }
  },
  () => {
    ua.stop();
    setTimeout(() => exit(EXIT.OK), 100);
  },
);

ua.start();
