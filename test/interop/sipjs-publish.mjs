// SIP.js 0.21 Publisher driven step by step from stdin: publishes dialog-info (RFC 4235) and
// presence (PIDF, RFC 3863) for sip:<user>@<domain>, as a softphone or PBX connector would.
//
//   node sipjs-publish.mjs --url ws://127.0.0.1:PORT/ws --token JWT --domain hub.test --user 1001
//        [--target 1001] [--auth query|bearer|both|none] [--expires 3600] [--timeout 60]
//
// --target is the user part whose state is published (default: --user; a PBX token may publish
// for others). One SIP.js Publisher per event package; the first publish of a package is an
// initial PUBLISH, later ones modify (SIP-If-Match + body), SIP.js refreshes by itself at 90 % of
// the granted Expires (SIP-If-Match, no body), unpublish sends Expires: 0.
//
// Commands (stdin, one JSON per line):
//   {"cmd":"publish","event":"dialog","state":"early","id":"d1","direction":"recipient",
//    "remote":"sip:1003@hub.test"}          one dialog in that state
//   {"cmd":"publish","event":"dialog","state":"idle"}   dialog-info with no dialog
//   {"cmd":"publish","event":"dialog","dialogs":[{...},{...}]}
//   {"cmd":"publish","event":"presence","basic":"open","note":"On the phone"}
//   {"cmd":"publish","event":"dialog","body":"<dialog-info ...>"}   raw body
//   {"cmd":"unpublish","event":"dialog"}
//   {"cmd":"quit"}  (stdin EOF is the same): stop without unpublishing
// Events (stdout), besides the common ws/sip/crlf/cmd/error/exit:
//   {"ev":"ready"}   connected, accepting commands
//   {"ev":"publishResponse","event":"dialog","kind":"initial|modify|refresh|remove",
//    "status":200,"etag":"...","expires":60}   one per final response, in order
//   {"ev":"publisherState","event":"dialog","state":"Published|Unpublished|Terminated"}
// Exit: 0 quit, 3 the WebSocket never opened, 4 timeout.

import { Publisher, PublisherState, UserAgent } from 'sip.js';
import { args, emit, exit, EXIT, commands, dropConnection, dialogInfoXML, pidfXML } from './lib/common.mjs';
import { makeUserAgent, bearerHeaders, stopUA, SIPJS_VERSION } from './lib/sipjs.mjs';

const a = args({ target: { type: 'string' } });
const target = a.target || a.user;
const entity = `sip:${target}@${a.domain}`;
const ua = makeUserAgent(a);
emit({ ev: 'start', lib: 'sip.js', version: SIPJS_VERSION, aor: a.aor, entity, auth: a.auth });

const CONTENT_TYPE = { dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml' };
const publishers = new Map(); // event → { publisher, version }

function publisherFor(event) {
  let p = publishers.get(event);
  if (p) return p;
  const contentType = CONTENT_TYPE[event];
  if (!contentType) throw new Error(`unknown event package ${event}`);
  const publisher = new Publisher(ua, UserAgent.makeURI(entity), event, {
    expires: a.expires || 3600,
    contentType,
    extraHeaders: bearerHeaders(a),
    unpublishOnClose: false,
  });
  p = { publisher, version: 0, kind: [] };
  // SIP.js reports no per-response outcome; watch each request it sends and each final
  // response it processes, in order (one PUBLISH in flight per Publisher).
  const send = publisher.sendPublishRequest.bind(publisher);
  publisher.sendPublishRequest = () => {
    let kind;
    if (publisher.pubRequestExpires === 0) kind = 'remove';
    else if (publisher.pubRequestEtag === undefined) kind = 'initial';
    else if (publisher.pubRequestBody !== undefined) kind = 'modify';
    else kind = 'refresh';
    p.kind.push(kind);
    return send();
  };
  const receive = publisher.receiveResponse.bind(publisher);
  publisher.receiveResponse = (response) => {
    const status = response.statusCode || 0;
    if (status >= 200) {
      const kind = p.kind.shift();
      emit({
        ev: 'publishResponse',
        event,
        kind,
        status,
        reason: response.reasonPhrase,
        etag: response.hasHeader('SIP-ETag') ? response.getHeader('SIP-ETag') : undefined,
        expires: response.hasHeader('Expires') ? Number(response.getHeader('Expires')) : undefined,
        minExpires: response.hasHeader('Min-Expires') ? Number(response.getHeader('Min-Expires')) : undefined,
      });
    }
    return receive(response);
  };
  publisher.stateChange.addListener((state) => emit({ ev: 'publisherState', event, state }));
  publishers.set(event, p);
  return p;
}

function bodyFor(c, p) {
  if (c.body) return c.body;
  if (c.event === 'presence') return pidfXML(entity, c.basic || 'open', c.note, c.tuple);
  let dialogs = c.dialogs;
  if (!dialogs) {
    dialogs = !c.state || c.state === 'idle' ? [] : [{
      id: c.id || 'd1',
      state: c.state,
      direction: c.direction || 'recipient',
      callId: c.callId,
      localTag: c.localTag,
      remoteTag: c.remoteTag,
      remote: c.remote,
    }];
  }
  return dialogInfoXML(entity, p.version++, dialogs);
}

async function quit(code) {
  for (const { publisher } of publishers.values()) {
    // Stop refresh timers without sending anything: quitting is not unpublishing.
    publisher.options.unpublishOnClose = false;
    await publisher.dispose();
  }
  await stopUA(ua);
  exit(code);
}

// Commands wait for the connection: a test may write them before "ready".
const started = ua.start().then(
  () => {
    emit({ ev: 'ready' });
    return true;
  },
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
      case 'publish': {
        const event = c.event || 'dialog';
        const p = publisherFor(event);
        await p.publisher.publish(bodyFor({ ...c, event }, p));
        return;
      }
      case 'unpublish': {
        const p = publishers.get(c.event || 'dialog');
        if (!p) throw new Error(`nothing published for ${c.event || 'dialog'}`);
        await p.publisher.unpublish();
        return;
      }
      case 'drop':
        dropConnection();
        return;
      case 'quit':
        await quit(EXIT.OK);
        return;
      default:
        emit({ ev: 'error', message: `unknown command ${c.cmd}` });
    }
  },
  () => quit(EXIT.OK),
);

