// A resource-list watcher (RFC 4662) with JsSIP 3.13 or SIP.js 0.21, neither of which reads list
// NOTIFYs: the library holds the subscription, the console's own module web/static/rlmi.js
// reads the multipart/related bodies and keeps the list's state.
//
//   node list-subscribe.mjs --lib jssip|sipjs --url ws://127.0.0.1:PORT/ws --token JWT
//        --domain hub.test --user 2000 (--target team | --members 1001,1002) [--event dialog]
//
// --target: a stored list, sip:<target>@<domain>. --members: an RFC 5367 request-contained list,
// SUBSCRIBE to sip:rls@<domain> with Require: recipient-list-subscribe and a resource-lists body.
//
// Events (stdout), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"list","version":V,"fullState":true,"resync":false,"lamps":{"1001":"busy",...},
//    "peers":{"1001":"Carol (2001)"},"states":{"1003":"terminated/rejected"}}
//       after each list NOTIFY: the lamp (blf.js lampOf) of every active member, the instance
//       state of the others
//   {"ev":"refused","status":N}   the SUBSCRIBE was refused
// Commands (stdin): {"cmd":"quit"}.

import JsSIP from 'jssip';
import { Subscriber, UserAgent } from 'sip.js';
import {
  args, emit, exit, EXIT, installWebSocket, commands, packageVersion,
} from './lib/common.mjs';
import { makeUserAgent, bearerHeaders, stopUA } from './lib/sipjs.mjs';
import { ResourceList, parseListNotify } from '../../web/static/rlmi.js';
import { lampOf } from '../../web/static/blf.js';

const a = args({
  lib: { type: 'string' },
  target: { type: 'string' },
  members: { type: 'string' },
  event: { type: 'string' },
});
const event = a.event || 'dialog';
const accept = {
  dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml',
  'message-summary': 'application/simple-message-summary',
}[event];
if (!accept || !['jssip', 'sipjs'].includes(a.lib) || !a.target === !a.members) {
  emit({ ev: 'error', message: 'usage: --lib jssip|sipjs, one of --target or --members, --event dialog|presence|message-summary' });
  exit(EXIT.USAGE);
}
const rfc5367 = !!a.members;
const target = `sip:${rfc5367 ? 'rls' : a.target}@${a.domain}`;
// What a list subscriber adds to an ordinary SUBSCRIBE (RFC 4662 §4.1, RFC 5367 §3).
const extraHeaders = ['Supported: eventlist', `Accept: multipart/related, application/rlmi+xml, ${accept}`];
let body = null;
if (rfc5367) {
  extraHeaders.push('Require: recipient-list-subscribe', 'Content-Disposition: recipient-list');
  body = '<?xml version="1.0" encoding="UTF-8"?>\r\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>' +
    a.members.split(',').map((m) => `<entry uri="sip:${m}@${a.domain}"/>`).join('') + '</list></resource-lists>';
}
const RESOURCE_LISTS = 'application/resource-lists+xml';

const list = new ResourceList();
function onListNotify(contentType, text) {
  let n;
  let r;
  try {
    n = parseListNotify(text, contentType);
    r = list.apply(n);
  } catch (err) {
    emit({ ev: 'error', message: `list NOTIFY: ${err.message}` });
    return;
  }
  const lamps = {};
  const peers = {};
  const states = {};
  for (const m of list.members.values()) {
    const ext = /^sip:([^@]+)@/.exec(m.uri)[1];
    if (m.state === 'active' && m.doc) {
      if (event === 'dialog') {
        const l = lampOf(m.doc, null);
        lamps[ext] = l.state;
        if (l.peer) peers[ext] = l.peer;
      } else if (event === 'presence') lamps[ext] = m.doc.basic;
      else lamps[ext] = String(m.doc.messages.voice ? m.doc.messages.voice.new : 0);
    } else states[ext] = m.reason ? `${m.state}/${m.reason}` : m.state;
  }
  emit({ ev: 'list', uri: list.uri, version: list.version, fullState: n.fullState, resync: r.resync, lamps, peers, states });
}

let stop;
if (a.lib === 'jssip') {
  installWebSocket();
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(a.wsURL)],
    uri: a.aor,
    authorization_jwt: a.bearer || undefined,
    register: false,
    user_agent: 'JsSIP-interop',
    session_timers: false,
  });
  emit({ ev: 'start', lib: 'jssip', version: packageVersion('jssip'), target, event });
  ua.on('connected', () => {
    // JsSIP writes its accept argument as the Accept header.
    const sub = ua.subscribe(target, event, extraHeaders[1].slice('Accept: '.length), {
      expires: 600, extraHeaders: extraHeaders.filter((h) => !h.startsWith('Accept:')),
      contentType: rfc5367 ? RESOURCE_LISTS : undefined,
    });
    sub.on('notify', (_final, request, text, contentType) => onListNotify(contentType, text));
    sub.on('terminated', (code, reason) => {
      emit({ ev: 'terminated', code, reason });
      if (code !== sub.C.FINAL_NOTIFY_RECEIVED) emit({ ev: 'refused', code });
    });
    sub.subscribe(body);
  });
  stop = () => { ua.stop(); setTimeout(() => exit(EXIT.OK), 100); };
  ua.start();
} else {
  const ua = makeUserAgent(a);
  emit({ ev: 'start', lib: 'sip.js', version: packageVersion('sip.js'), target, event });
  const sub = new Subscriber(ua, UserAgent.makeURI(target), event, {
    expires: 600,
    extraHeaders: [...bearerHeaders(a), ...extraHeaders],
    ...(rfc5367 ? { body, contentType: RESOURCE_LISTS } : {}),
  });
  sub.delegate = {
    onNotify: (n) => {
      n.accept();
      if (n.request.body) onListNotify(n.request.getHeader('Content-Type'), n.request.body);
    },
  };
  await ua.start();
  await sub.subscribe();
  stop = async () => { await stopUA(ua); exit(EXIT.OK); };
}

commands(
  async (c) => {
    if (c.cmd === 'quit') stop();
    else emit({ ev: 'error', message: `unknown command ${c.cmd}` });
  },
  () => stop(),
);
