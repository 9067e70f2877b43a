// JsSIP 3.13 watcher: ua.subscribe(target, 'dialog', 'application/dialog-info+xml', ...) on an
// extension, as a BLF key would, reporting each NOTIFY's parsed state.
//
//   node jssip-subscribe.mjs --url ws://127.0.0.1:PORT/ws --token JWT --domain hub.test --user 1001
//        --target 1002 [--event dialog|presence] [--expires 600] [--register]
//        [--auth query|bearer|both|none] [--timeout 60] [--final-wait 5000]
//
// Events (stdout), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"start",...} {"ev":"connected"} {"ev":"disconnected","code":N}
//   {"ev":"registered"} {"ev":"unregistered"}            with --register only
//   {"ev":"accepted"} {"ev":"active"} {"ev":"pending"}    Subscriber events
//   {"ev":"notify","event":"dialog","state":"early","subState":"active","subExpires":N,
//    "final":false,"version":V,"dialogs":1,"cseq":C,"conn":1}
//       for each NOTIFY JsSIP reports; state = first dialog's <state>, "idle" when no dialog,
//       basic open/closed for presence
//   {"ev":"subscribeResponse","kind":"initial|refresh|unsubscribe","status":200,"expires":N}
//   {"ev":"notifyAnswered","cseq":C,"answer":200,"subState":...,"state":...}   from the wire
//   {"ev":"terminated","code":6,"codeName":"FINAL_NOTIFY_RECEIVED","reason":"timeout"}
// Commands (stdin): {"cmd":"refresh"} re-SUBSCRIBE now; {"cmd":"unsubscribe"} → SUBSCRIBE
//   Expires 0, wait for the final NOTIFY, exit 0; {"cmd":"drop"} kill the socket (JsSIP
//   reconnects by itself, keeping its subscription dialog); {"cmd":"quit"} stop, exit 0.
// Exit: 0 ended as asked, 3 refused, 4 timeout (also: no final NOTIFY within --final-wait ms).

import JsSIP from 'jssip';
import {
  args, emit, exit, EXIT, installWebSocket, commands, dropConnection, packageVersion, parseBody,
  subscriptionState, trackSubscriptions, currentConn,
} from './lib/common.mjs';

const a = args({
  target: { type: 'string' },
  event: { type: 'string' },
  register: { type: 'boolean' },
  'final-wait': { type: 'string' },
});
const event = a.event || 'dialog';
const accept = { dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml' }[event];
if (!accept || !a.target) {
  emit({ ev: 'error', message: 'usage: --target is required and --event must be dialog or presence' });
  exit(EXIT.USAGE);
}
const target = `sip:${a.target}@${a.domain}`;
const finalWait = Number(a['final-wait'] || 5000);
installWebSocket();

const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(a.wsURL)],
  uri: a.aor,
  display_name: `Ext ${a.user}`,
  authorization_jwt: a.bearer || undefined,
  register: !!a.register,
  register_expires: 600,
  user_agent: 'JsSIP-interop',
  session_timers: false,
});
emit({ ev: 'start', lib: 'jssip', version: packageVersion('jssip'), aor: a.aor, target, event, auth: a.auth });

// Termination code → name, from the Subscriber's own table (JsSIP does not export the class).
function codeName(sub, code) {
  const e = Object.entries(sub.C).find(([k, v]) => v === code && /RESPONSE|ERROR|FAILED|TIMEOUT|RECEIVED/.test(k));
  return e ? e[0] : undefined;
}
let subscriber = null;
let accepted = false;
let everConnected = false;
let connectFailed = false;
let wantEnd = false;

trackSubscriptions();

function startSubscription() {
  if (subscriber) return;
  subscriber = ua.subscribe(target, event, accept, { expires: a.expires || 600 });
  subscriber.on('accepted', () => {
    accepted = true;
    emit({ ev: 'accepted' });
  });
  subscriber.on('active', () => emit({ ev: 'active' }));
  subscriber.on('pending', () => emit({ ev: 'pending' }));
  subscriber.on('notify', (isFinal, request, body, contentType) => {
    emit({
      ev: 'notify',
      event,
      final: isFinal,
      cseq: request.cseq,
      conn: currentConn(),
      ...subscriptionState(request.getHeader('Subscription-State')),
      ...parseBody(contentType, body || ''),
    });
  });
  subscriber.on('terminated', (code, reason, retryAfter) => {
    emit({ ev: 'terminated', code, codeName: codeName(subscriber, code), reason, retryAfter, asked: wantEnd });
    if (wantEnd) {
      // JsSIP answered the final NOTIFY before emitting: nothing is left to send.
      ua.stop();
      setTimeout(() => exit(EXIT.OK), 100);
    } else if (!accepted) {
      setTimeout(() => {
        ua.stop();
        exit(EXIT.REFUSED);
      }, a.linger);
    }
  });
  subscriber.subscribe();
}

ua.on('connected', () => {
  everConnected = true;
  emit({ ev: 'connected', conn: currentConn() });
  if (!a.register) startSubscription();
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
ua.on('registered', () => {
  emit({ ev: 'registered', conn: currentConn() });
  startSubscription();
});
ua.on('unregistered', (e) => emit({ ev: 'unregistered', cause: e && e.cause }));
ua.on('registrationFailed', (e) => {
  emit({ ev: 'registrationFailed', status: e.response ? e.response.status_code : undefined, cause: e.cause });
  setTimeout(() => {
    ua.stop();
    exit(EXIT.REFUSED);
  }, a.linger);
});

function quit() {
  ua.stop();
  setTimeout(() => exit(EXIT.OK), 100);
}

commands(
  async (c) => {
    switch (c.cmd) {
      case 'refresh':
        if (!subscriber) throw new Error('not subscribed');
        subscriber.subscribe();
        return;
      case 'unsubscribe':
        if (!subscriber) throw new Error('not subscribed');
        wantEnd = true;
        if (subscriber.state === subscriber.C.STATE_TERMINATED) {
          emit({ ev: 'terminated', reason: 'already terminated', asked: true });
          quit();
          return;
        }
        subscriber.terminate();
        setTimeout(() => {
          emit({ ev: 'error', message: `no final NOTIFY within ${finalWait} ms of un-SUBSCRIBE` });
          ua.stop();
          exit(EXIT.TIMEOUT);
        }, finalWait);
        return;
      case 'drop':
        dropConnection();
        return;
      case 'quit':
        quit();
        return;
      default:
        emit({ ev: 'error', message: `unknown command ${c.cmd}` });
    }
  },
  () => quit(),
);

ua.start();
