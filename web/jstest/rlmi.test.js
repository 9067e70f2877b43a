import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { lampOf } from '../static/blf.js';
import {
  ResourceList, parseContentType, parseListNotify, parseMultipart, parseRlmi, parseXml,
  readDialogInfo, readMessageSummary, readPidf,
} from '../static/rlmi.js';

// The hub's own NOTIFYs, written by web/rlmi_test.go (TestRLMIFixtures_AreWhatTheHubSends).
const hub = JSON.parse(readFileSync(new URL('./testdata/hub-notifies.json', import.meta.url), 'utf8'));
const parsed = hub.map((n) => parseListNotify(n.body, n.contentType));

test('parseListNotify_HubFullState_MembersWithStateNameAndDocument', () => {
  const n = parsed[0];
  assert.equal(n.uri, 'sip:team@hub.test');
  assert.equal(n.version, 0);
  assert.equal(n.fullState, true);
  assert.deepEqual(n.resources.map((r) => [r.uri, r.name, r.state, r.reason]), [
    ['sip:1001@hub.test', 'Reception & Co', 'active', ''],
    ['sip:1002@hub.test', 'Sales', 'pending', ''],
    ['sip:1003@hub.test', '', 'terminated', 'rejected'],
  ]);
  const [r1001, r1002, r1003] = n.resources;
  assert.equal(r1001.contentType, 'application/dialog-info+xml');
  assert.match(r1001.body, /^<\?xml/);
  assert.equal(r1001.doc.entity, 'sip:1001@hub.test');
  const l = lampOf(r1001.doc, null);
  assert.deepEqual([l.state, l.peer, l.dialog.id], ['busy', 'Carol (2001)', 'c1']);
  // The hub's stamp (normalised in the fixture by web/rlmi_test.go) starts the call timer.
  assert.equal(l.dialog.since, Date.parse('2026-01-02T03:04:05.678Z'));
  assert.equal(r1002.body, null);
  assert.equal(r1003.doc, null);
});

test('parseListNotify_HubPresenceList_RFC5367', () => {
  const n = parsed[4];
  assert.equal(n.uri, 'sip:rls@hub.test');
  assert.equal(n.fullState, true);
  const [a, b] = n.resources;
  assert.equal(a.name, 'Reception');
  assert.deepEqual(a.doc, { basic: 'open', activities: ['on-the-phone'], note: 'In the office' });
  assert.deepEqual(b.doc, { basic: 'closed', activities: [], note: '' });
});

test('ResourceList_FollowsTheHubsSequence_FullThenPartial', () => {
  const list = new ResourceList();
  const steps = [
    { changed: ['sip:1001@hub.test', 'sip:1002@hub.test', 'sip:1003@hub.test'] },
    { changed: ['sip:1002@hub.test'], lamp: ['sip:1002@hub.test', 'ringing', 'Dave (2002)'] },
    { changed: ['sip:1002@hub.test'], lamp: ['sip:1002@hub.test', 'busy', 'Dave (2002)'] },
    { changed: ['sip:1001@hub.test'], lamp: ['sip:1001@hub.test', 'idle', ''] },
  ];
  steps.forEach((want, i) => {
    const r = list.apply(parsed[i]);
    assert.deepEqual(r, { changed: want.changed, removed: [], resync: false, stale: false }, hub[i].step);
    if (want.lamp) {
      const [uri, state, peer] = want.lamp;
      const l = lampOf(list.get(uri).doc, null);
      assert.equal(l.state, state, hub[i].step);
      assert.equal(l.peer, peer, hub[i].step);
    }
  });
  // A partial NOTIFY keeps the members it does not name, in list order.
  assert.deepEqual([...list.members.keys()], ['sip:1001@hub.test', 'sip:1002@hub.test', 'sip:1003@hub.test']);
  assert.equal(list.version, 3);
  assert.equal(list.get('sip:1002@hub.test').name, 'Sales');
  // The same NOTIFY again (a retransmission) is stale.
  assert.deepEqual(list.apply(parsed[3]), { changed: [], removed: [], resync: false, stale: true });
});

test('ResourceList_VersionGapOrPartialFirst_NeedsResyncUntilFullState', () => {
  const cases = [
    { name: 'partial before any full state', feed: [1], resync: true },
    { name: 'version 2 after 0 (1 missed)', feed: [0, 2], resync: true },
    { name: 'after a gap, partials are not merged', feed: [0, 2, 3], resync: true },
    { name: 'a full state ends the resync', feed: [0, 2, 'full4'], resync: false },
    { name: 'in order', feed: [0, 1, 2, 3], resync: false },
  ];
  for (const c of cases) {
    const list = new ResourceList();
    let r;
    for (const step of c.feed) {
      const n = step === 'full4' ? { ...parsed[0], version: 4 } : parsed[step];
      r = list.apply(n);
    }
    assert.equal(list.needsResync, c.resync, c.name);
    assert.equal(r.resync, c.resync && !(r.changed.length > 0), c.name);
  }
});

test('ResourceList_FullState_RemovesMembersNoLongerListed', () => {
  const list = new ResourceList();
  list.apply(parsed[0]);
  const smaller = { ...parsed[0], version: 1, resources: parsed[0].resources.slice(0, 1) };
  const r = list.apply(smaller);
  assert.deepEqual(r.removed, ['sip:1002@hub.test', 'sip:1003@hub.test']);
  assert.deepEqual(r.changed, []);
  assert.equal(list.members.size, 1);
});

// RFC 4662 §6.5's example layout: LF line ends, a preamble, headers in another order,
// a member part without Content-Transfer-Encoding, one instance without a document.
const rfcBody = [
  'This is a multi-part message in MIME format.',
  '--50UBfW7LSCVLtggUPe5z',
  'Content-ID: <nXYxAE@pres.vancouver.example.com>',
  'Content-Transfer-Encoding: binary',
  'Content-Type: application/rlmi+xml;charset="UTF-8"',
  '',
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<list xmlns="urn:ietf:params:xml:ns:rlmi"',
  '      uri="sip:adam-friends@pres.vancouver.example.com"',
  '      version="1" fullState="true">',
  '  <name xml:lang="en">Buddy List at COM</name>',
  '  <resource uri="sip:bob@vancouver.example.com">',
  '    <name>Bob Smith</name>',
  '    <instance id="juwigmtboe" state="active"',
  '              cid="bUZBsM@pres.vancouver.example.com"/>',
  '  </resource>',
  '  <resource uri="sip:dave@vancouver.example.com">',
  '    <name>Dave Jones</name>',
  '    <instance id="hqzsuxtfyq" state="pending"/>',
  '  </resource>',
  '  <resource uri="sip:ed@dallas.example.net">',
  '    <name>Ed at NET</name>',
  '    <instance id="ivjkfrnd" state="terminated" reason="rejected"/>',
  '  </resource>',
  '</list>',
  '',
  '--50UBfW7LSCVLtggUPe5z',
  'Content-Transfer-Encoding: binary',
  'Content-ID: <bUZBsM@pres.vancouver.example.com>',
  'Content-Type: application/pidf+xml;charset="UTF-8"',
  '',
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf"',
  '    entity="sip:bob@vancouver.example.com">',
  '  <tuple id="sg89ae">',
  '    <status>',
  '      <basic>open</basic>',
  '    </status>',
  '    <contact priority="1.0">sip:bob@vancouver.example.com</contact>',
  '  </tuple>',
  '</presence>',
  '',
  '--50UBfW7LSCVLtggUPe5z--',
  '',
].join('\n');
const rfcType = 'multipart/related;type="application/rlmi+xml";\n start="<nXYxAE@pres.vancouver.example.com>";boundary="50UBfW7LSCVLtggUPe5z"';

test('parseListNotify_RFC4662Example', () => {
  const n = parseListNotify(rfcBody, rfcType);
  assert.equal(n.uri, 'sip:adam-friends@pres.vancouver.example.com');
  assert.equal(n.version, 1);
  assert.deepEqual(n.resources.map((r) => [r.name, r.state, r.reason, r.doc && r.doc.basic]), [
    ['Bob Smith', 'active', '', 'open'],
    ['Dave Jones', 'pending', '', null],
    ['Ed at NET', 'terminated', 'rejected', null],
  ]);
});

test('parseListNotify_BadInput_Throws', () => {
  const ct = hub[0].contentType;
  const body = hub[0].body;
  const cases = [
    { name: 'not multipart', body, ct: 'application/dialog-info+xml', re: /not multipart\/related/ },
    { name: 'no boundary parameter', body, ct: 'multipart/related;type="application/rlmi+xml"', re: /without boundary/ },
    { name: 'boundary never in the body', body, ct: ct.replace(/boundary="[^"]+"/, 'boundary="other"'), re: /boundary not found/ },
    { name: 'cut short', body: body.slice(0, body.length - 30), ct, re: /close delimiter/ },
    { name: 'root not RLMI', body: body.replace('application/rlmi+xml;', 'text/plain;'), ct, re: /no application\/rlmi\+xml root/ },
    { name: 'RLMI not well-formed', body: body.replace('</list>', '</lst>'), ct, re: /malformed XML/ },
    { name: 'RLMI without version', body: body.replace(' version="0"', ''), ct, re: /without uri or version/ },
  ];
  for (const c of cases) assert.throws(() => parseListNotify(c.body, c.ct), c.re, c.name);
});

test('parseMultipart_And_parseContentType', () => {
  assert.deepEqual(parseContentType('Multipart/Related; boundary="a;b"; type=x'), { type: 'multipart/related', params: { boundary: 'a;b', type: 'x' } });
  const parts = parseMultipart('--b\r\nContent-Type: text/plain\r\nContent-ID: <1>\r\n\r\nhello\r\n--b\r\n\r\nbare\r\n--b--\r\n', 'b');
  assert.deepEqual(parts.map((p) => [p.contentType, p.contentId, p.body]), [['text/plain', '1', 'hello'], ['text/plain', '', 'bare']]);
});

test('parseXml_EntitiesNamespacesAndErrors', () => {
  const el = parseXml('<?xml version="1.0"?><!-- c --><a:x xmlns:a="urn:a" k=\'v &amp; &#x41;\'><y>1 &lt; 2<![CDATA[<z>]]></y><w/></a:x>');
  assert.equal(el.name, 'x');
  assert.equal(el.ns, 'urn:a');
  assert.equal(el.attrs.k, 'v & A');
  assert.equal(el.children[0].text, '1 < 2<z>');
  for (const bad of ['<a><b></a>', '<a>', '<a></a><b/>', '<a>x < y</a>']) assert.throws(() => parseXml(bad), /malformed XML/, bad);
});

test('readDialogInfo_SinceIsTheHubStampInItsNamespaceOnly', () => {
  const d = readDialogInfo(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1001@hub.test">
<dialog id="a" direction="recipient"><state>confirmed</state><remote><identity>sip:2001@hub.test</identity></remote><since xmlns="urn:x-presencehub:dialog">2026-12-03T09:41:07.250Z</since></dialog>
<dialog id="b"><state>early</state><ph:since xmlns:ph="urn:x-presencehub:dialog">2026-12-03T09:00:00.000Z</ph:since></dialog>
<dialog id="c"><state>early</state><since xmlns="urn:example:other">2026-12-03T09:00:00.000Z</since></dialog>
<dialog id="d"><state>early</state></dialog></dialog-info>`);
  const [a, b, c, x] = d.dialogs;
  assert.equal(a.since, Date.UTC(2026, 11, 3, 9, 41, 7, 250));
  assert.equal(b.since, Date.UTC(2026, 11, 3, 9, 0, 0, 0));
  assert.equal(c.since, null);
  assert.equal(x.since, null);
});

test('readDialogInfo_DurationParticipantsAndHold', () => {
  const d = readDialogInfo(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="partial" entity="sip:1001@hub.test">
    <dialog id="x" call-id="c" direction="initiator"><state>confirmed</state><duration>75</duration>
    <local><identity display="Ann">sip:1001@hub.test</identity><target uri="sip:1001@10.0.0.1"><param pname="+sip.rendering" pvalue="no"/></target></local>
    <remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`);
  assert.equal(d.full, false);
  assert.equal(d.version, 3);
  const [x] = d.dialogs;
  assert.equal(x.duration, 75);
  assert.equal(x.local.rendering, 'no');
  assert.equal(x.local.display, 'Ann');
  assert.equal(lampOf(d, null).state, 'hold');
  assert.throws(() => readDialogInfo('<presence xmlns="urn:ietf:params:xml:ns:pidf"/>'), /not a dialog-info/);
  assert.throws(() => readPidf('<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"/>'), /not a PIDF/);
});

test('readMessageSummary_RFC3842Example', () => {
  // RFC 3842 §5.2's example body.
  const m = readMessageSummary('Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 2/8 (0/2)\r\n');
  assert.deepEqual(m, {
    waiting: true, account: 'sip:alice@vmail.example.com',
    messages: { voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 } },
  });
  assert.deepEqual(readMessageSummary('Messages-Waiting: no\nFax-Message: 0/1\n').messages, { fax: { new: 0, old: 1, urgentNew: 0, urgentOld: 0 } });
  assert.throws(() => readMessageSummary('Voice-Message: 1/0'), /without Messages-Waiting/);
});

test('parseRlmi_Directly', () => {
  const r = parseRlmi('<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@h" version="7" fullState="false"><resource uri="sip:a@h"><instance id="1" state="active" cid="c"/></resource></list>');
  assert.deepEqual(r, { uri: 'sip:l@h', version: 7, fullState: false, name: '', resources: [{ uri: 'sip:a@h', name: '', instances: [{ id: '1', state: 'active', reason: '', cid: 'c' }] }] });
  assert.throws(() => parseRlmi('<list uri="sip:l@h" version="1" fullState="true"/>'), /not an RLMI/);
});
