// SIP.js 0.21 UserAgent + Registerer that registers sip:<user>@<domain> with a JWT and stays
// registered.
//
//   node sipjs-register.mjs --url ws://127.0.0.1:PORT/ws --token JWT --domain hub.test --user 1001
//        [--auth query|bearer|both|none] [--expires 30] [--refresh-frequency 99] [--timeout 60]
//
// Events (stdout), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"start","lib":"sip.js",...} {"ev":"connected"} {"ev":"disconnected"}
//   {"ev":"registered","n":1}             Registerer state → Registered
//   {"ev":"refreshed","n":2,"expires":E}  each later 2xx to a refreshing REGISTER
//   {"ev":"unregistered"}                 Registerer state → Unregistered (also on expiry!)
//   {"ev":"registrationFailed","status":401,"reason":"Unauthorized"}
//   {"ev":"connectFailed","message":...}  the WebSocket never opened (upgrade refused: see the
//                           preceding {"ev":"ws","state":"error","httpStatus":401})
// Commands (stdin): {"cmd":"unregister"}, {"cmd":"drop"}, {"cmd":"quit"}.
// Exit: 0 ended as asked, 3 refused (after --linger ms), 4 timeout.

import { Registerer, RegistererState } from 'sip.js';
import { args, emit, exit, EXIT, onSip, commands, dropConnection } from './lib/common.mjs';
import { makeUserAgent, bearerHeaders, stopUA, SIPJS_VERSION } from './lib/sipjs.mjs';

const a = args({ 'refresh-frequency': { type: 'string' } });
const ua = makeUserAgent(a);
emit({ ev: 'start', lib: 'sip.js', version: SIPJS_VERSION, aor: a.aor, auth: a.auth });

const registerer = new Registerer(ua, {
  expires: a.expires || 600,
  extraHeaders: bearerHeaders(a),
  refreshFrequency: a['refresh-frequency'] ? Number(a['refresh-frequency']) : undefined,
});

let n2xx = 0;
let registered = false;
let wantUnregister = false;
let lastRegister = null;

onSip((s) => {
  if (s.dir === 'out' && s.method === 'REGISTER') lastRegister = s;
  if (s.dir === 'in' && s.cseqMethod === 'REGISTER' && s.status >= 200 && s.status < 300) {
    if (lastRegister && !/expires=0/.test(lastRegister.contact || '')) {
      n2xx++;
      if (registered) emit({ ev: 'refreshed', n: n2xx, expires: s.contactExpires ?? s.expires });
    }
  }
});

registerer.stateChange.addListener((state) => {
  switch (state) {
    case RegistererState.Registered:
      registered = true;
      emit({ ev: 'registered', n: n2xx });
      break;
    case RegistererState.Unregistered:
      registered = false;
      emit({ ev: 'unregistered' });
      if (wantUnregister) stop(EXIT.OK);
      break;
    case RegistererState.Terminated:
      emit({ ev: 'registererTerminated' });
      break;
  }
});

async function stop(code) {
  await stopUA(ua);
  exit(code);
}

commands(
  async (c) => {
    switch (c.cmd) {
      case 'unregister':
        wantUnregister = true;
        if (!registered) {
          emit({ ev: 'unregistered', cause: 'not registered' });
          await stop(EXIT.OK);
          return;
        }
        await registerer.unregister();
        return;
      case 'drop':
        dropConnection();
        return;
      case 'quit':
        await stop(EXIT.OK);
        return;
      default:
        emit({ ev: 'error', message: `unknown command ${c.cmd}` });
    }
  },
  () => stop(EXIT.OK),
);

try {
  await ua.start();
} catch (err) {
  emit({ ev: 'connectFailed', message: String(err && err.message ? err.message : err) });
  setTimeout(() => exit(EXIT.REFUSED), a.linger);
}
if (ua.isConnected()) {
  await registerer.register({
    requestDelegate: {
      onReject: (response) => {
        emit({ ev: 'registrationFailed', status: response.message.statusCode, reason: response.message.reasonPhrase });
        // Stay --linger ms: any REGISTER SIP.js sends meanwhile shows up as a "sip" event.
        setTimeout(() => stop(EXIT.REFUSED), a.linger);
      },
    },
  });
}
