import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  buildRequest, buildResponse, parse, parseCSeq, parseNameAddr, parseSubscriptionState, topViaBranch,
} from '../static/sipmsg.js';

// A NOTIFY as a hub sends it (a stand-in hub's NOTIFY that JsSIP in Chromium accepted).
const NOTIFY = [
  'NOTIFY sip:38i7f7v4@oaait0kfcg0v.invalid;transport=ws SIP/2.0',
  'Via: SIP/2.0/WS hub.invalid;branch=z9hG4bK176f509f2fbe',
  'Max-Forwards: 70',
  'To: "Ext 1001" <sip:1001@hub.test>;tag=c39f2nkdb5',
  'From: <sip:1002@hub.test>;tag=f18a5b689d',
  'Call-ID: 4l084ktuu1v600epih27',
  'CSeq: 982 NOTIFY',
  'Event: dialog',
  'Subscription-State: active;expires=300',
  'Contact: <sip:hub@127.0.0.1:28080;transport=ws>',
  'Content-Type: application/dialog-info+xml',
  'Content-Length: 23',
  '',
  '<dialog-info état=""/>',
].join('\r\n');

test('parse_Notify_ReadsStartLineHeadersAndBody', () => {
  const m = parse(NOTIFY);
  assert.ok(m.isRequest);
  assert.equal(m.method, 'NOTIFY');
  assert.equal(m.uri, 'sip:38i7f7v4@oaait0kfcg0v.invalid;transport=ws');
  assert.equal(m.get('Call-ID'), '4l084ktuu1v600epih27');
  assert.equal(m.get('subscription-state'), 'active;expires=300');
  assert.equal(m.body, '<dialog-info état=""/>');
  assert.equal(topViaBranch(m), 'z9hG4bK176f509f2fbe');
});

test('parse_CompactFormsAndFolding', () => {
  const m = parse('SIP/2.0 200 OK\r\nv: SIP/2.0/WS a.invalid;branch=z9hG4bK1, SIP/2.0/WS b.invalid;branch=z9hG4bK2\r\n' +
    'f: <sip:a@b>;tag=1\r\nt: <sip:c@b>\r\n ;tag=2\r\ni: x\r\nCSeq: 3 SUBSCRIBE\r\no: dialog\r\n\r\n');
  assert.equal(m.status, 200);
  assert.equal(m.reason, 'OK');
  assert.deepEqual(m.getAll('via').length, 2);
  assert.equal(topViaBranch(m), 'z9hG4bK1');
  assert.equal(parseNameAddr(m.get('to')).params.tag, '2');
  assert.equal(m.get('event'), 'dialog');
  assert.equal(m.get('call-id'), 'x');
});

test('parse_Malformed_Throws', () => {
  assert.throws(() => parse('HELLO\r\n\r\n'));
  assert.throws(() => parse('NOTIFY sip:a@b SIP/2.0\r\nVia: x\r\n\r\n')); // no From/To/...
  assert.throws(() => parse('NOTIFY sip:a@b SIP/2.0\r\nno colon here\r\n\r\n'));
});

test('buildResponse_CopiesHeadersAndAddsToTagOnlyWhenMissing', () => {
  const req = parse(NOTIFY);
  const res = parse(buildResponse(req, 200, 'OK'));
  for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) assert.equal(res.get(h), req.get(h));
  assert.equal(res.get('content-length'), '0');
  const noTag = parse(NOTIFY.replace(';tag=c39f2nkdb5', ''));
  assert.match(parse(buildResponse(noTag, 481, 'Gone')).get('to'), /;tag=\w+$/);
});

test('buildRequest_ContentLengthCountsBytes', () => {
  const s = buildRequest('PUBLISH', 'sip:a@b', [['Via', 'v'], ['From', 'f'], ['To', 't'], ['Call-ID', 'c'], ['CSeq', '1 PUBLISH']], 'é');
  assert.match(s, /^PUBLISH sip:a@b SIP\/2\.0\r\n/);
  assert.match(s, /\r\nContent-Length: 2\r\n\r\né$/);
});

test('parseNameAddr_Forms', () => {
  const cases = [
    ['"Ext \\"1\\"" <sip:1001@hub.test>;tag=abc', { display: 'Ext "1"', uri: 'sip:1001@hub.test', params: { tag: 'abc' } }],
    ['Bob <sip:b@x;transport=ws>;expires=30', { display: 'Bob', uri: 'sip:b@x;transport=ws', params: { expires: '30' } }],
    ['sip:1002@hub.test;tag=x', { display: '', uri: 'sip:1002@hub.test', params: { tag: 'x' } }],
    ['<sip:1002@hub.test>', { display: '', uri: 'sip:1002@hub.test', params: {} }],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseNameAddr(input), want, input);
});

test('parseSubscriptionState_Forms', () => {
  assert.deepEqual(parseSubscriptionState('active;expires=300'),
    { state: 'active', reason: undefined, expires: 300, retryAfter: undefined });
  assert.deepEqual(parseSubscriptionState('Terminated; reason=Giveup; retry-after=30'),
    { state: 'terminated', reason: 'giveup', expires: undefined, retryAfter: 30 });
});

test('parseCSeq_Forms', () => {
  assert.deepEqual(parseCSeq('5571 SUBSCRIBE'), { seq: 5571, method: 'SUBSCRIBE' });
  assert.deepEqual(parseCSeq('junk'), { seq: -1, method: '' });
});
