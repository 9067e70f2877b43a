// SIP.js 0.21 watcher: a Subscriber on an extension's dialog (or presence) state, as a BLF key
// would, reporting each NOTIFY's parsed state.
//
//   node sipjs-subscribe.mjs --url ws://127.0.0.1:PORT/ws --token JWT --domain hub.test --user 1001
//        --target 1002 [--event dialog|presence] [--expires 600] [--accept]
//        [--auth query|bearer|both|none] [--timeout 60] [--final-wait 5000]
//
// SIP.js sends no Accept header unless told (docs/protocol.md); --accept adds one to the initial
// SUBSCRIBE (never on refresh: SIP.js can't).
//
// Events (stdout), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"start",...} {"ev":"connected"} {"ev":"disconnected"}
//   {"ev":"subscriberState","state":"NotifyWait|Subscribed|Terminated"}
//   {"ev":"notify","event":"dialog","state":"early","subState":"active","subExpires":N,
//    "final":false,"version":V,"dialogs":1,"cseq":C,"conn":1}
//       for each NOTIFY SIP.js delivers; state = first dialog's <state>, "idle" when no dialog,
//       basic open/closed for presence. (After unsubscribe() SIP.js delivers no NOTIFY to the
//       application: the final one shows as notifyAnswered.)
//   {"ev":"subscribeResponse","kind":"initial|refresh|unsubscribe","status":200,"expires":N}
//   {"ev":"notifyAnswered","cseq":C,"answer":200,"subState":...,"state":...}   from the wire
//   {"ev":"terminated","final":true,"reason":"timeout","state":"idle"}  after unsubscribe
// Commands (stdin): {"cmd":"refresh"}, {"cmd":"unsubscribe"} → SUBSCRIBE Expires 0, wait for
//   the final NOTIFY, exit 0; {"cmd":"drop"}; {"cmd":"quit"}.
// Exit: 0 ended as asked, 3 refused, 4 timeout (also: no final NOTIFY within --final-wait ms).

import { Subscriber, SubscriptionState, UserAgent } from 'sip.js';
import {
  args, emit, exit, EXIT, commands, dropConnection, parseBody, subscriptionState,
  trackSubscriptions, currentConn,
} from './lib/common.mjs';
import { makeUserAgent, bearerHeaders, stopUA, SIPJS_VERSION } from './lib/sipjs.mjs';

const a = args({
  target: { type: 'string' },
  event: { type: 'string' },
  accept: { type: 'boolean' },
  'final-wait': { type: 'string' },
});
const event = a.event || 'dialog';
const acceptType = { dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml' }[event];
if (!acceptType || !a.target) {
  emit({ ev: 'error', message: 'usage: --target is required and --event must be dialog or presence' });
  exit(EXIT.USAGE);
}
const target = `sip:${a.target}@${a.domain}`;
const finalWait = Number(a['final-wait'] || 5000);
const ua = makeUserAgent(a);
emit({ ev: 'start', lib: 'sip.js', version: SIPJS_VERSION, aor: a.aor, target, event, auth: a.auth });

let wantEnd = false;
let everSubscribed = false;
let ended = false;

// The final NOTIFY after unsubscribe() is visible only on the wire (answered by SIP.js itself).
trackSubscriptions((e) => {
  if (e.ev === 'notifyAnswered' && e.subState === 'terminated' && wantEnd && !ended) {
    ended = true;
    emit({ ev: 'terminated', final: true, reason: e.reason, state: e.state, answer: e.answer, asked: true });
    stop(EXIT.OK);
  }
});

const extraHeaders = [...bearerHeaders(a)];
if (a.accept) extraHeaders.push(`Accept: ${acceptType}`);
const subscriber = new Subscriber(ua, UserAgent.makeURI(target), event, {
  expires: a.expires || 600,
  extraHeaders,
});
subscriber.delegate = {
  onNotify: (notification) => {
    const req = notification.request;
    const ss = subscriptionState(req.getHeader('Subscription-State'));
    notification.accept();
    emit({
      ev: 'notify',
      event,
      final: ss.subState === 'terminated',
      cseq: req.cseq,
      conn: currentConn(),
      ...ss,
      ...parseBody(req.getHeader('Content-Type'), req.body || ''),
    });
  },
};
subscriber.stateChange.addListener((state) => {
  emit({ ev: 'subscriberState', state });
  if (state === SubscriptionState.Subscribed) everSubscribed = true;
  if (state === SubscriptionState.Terminated && !wantEnd && !everSubscribed) {
    // The initial SUBSCRIBE was refused (its response is in the subscribeResponse event).
    setTimeout(() => stop(EXIT.REFUSED), a.linger);
  }
});

async function stop(code) {
  await stopUA(ua);
  exit(code);
}

const started = ua.start().then(
  () => true,
  (err) => {
    emit({ ev: 'connectFailed', message: String(err && err.message ? err.message : err) });
    setTimeout(() => exit(EXIT.REFUSED), a.linger);
    return false;
  },
);

commands(
  async (c) => {
    if (c.cmd !== 'quit' && !(await started)) return;
    switch (c.cmd) {
      case 'refresh':
        await subscriber.subscribe();
        return;
      case 'unsubscribe':
        wantEnd = true;
        if (subscriber.state === SubscriptionState.Terminated) {
          emit({ ev: 'terminated', reason: 'already terminated', asked: true });
          await stop(EXIT.OK);
          return;
        }
        await subscriber.unsubscribe();
        setTimeout(() => {
          emit({ ev: 'error', message: `no final NOTIFY within ${finalWait} ms of un-SUBSCRIBE` });
          stop(EXIT.TIMEOUT);
        }, finalWait);
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

if (await started) await subscriber.subscribe();
