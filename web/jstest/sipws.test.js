import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parse } from '../static/sipmsg.js';
import { backoff, refreshDelay, resubscribeDelay, Subscriber } from '../static/sipws.js';
import { FakeClock, fakeWebSocketClass } from './fakes.js';

// newConsole starts a Subscriber watching exts over a fake socket; it returns the pieces a test
// drives: the clock, the socket class, the collected events.
function newConsole(exts = ['1002']) {
  const clock = new FakeClock();
  const WS = fakeWebSocketClass();
  const s = new Subscriber({
    url: 'ws://hub.test/ws?access_token=t', user: '1001', domain: 'hub.test',
    WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now,
    random: () => 0.5,
  });
  const updates = [];
  const statuses = [];
  s.addEventListener('update', (e) => updates.push(e.detail));
  s.addEventListener('status', (e) => statuses.push(e.detail));
  s.watch(exts);
  s.start();
  return { s, clock, WS, updates, statuses, ws: () => WS.all[WS.all.length - 1] };
}

function ok200(req, { toTag = 'hubtag', expires = 600, contact = '<sip:hub@hub.test;transport=ws>' } = {}) {
  return [
    'SIP/2.0 200 OK',
    ...req.headers.filter(([n]) => n === 'via').map(([, v]) => `Via: ${v}`),
    `From: ${req.get('from')}`,
    `To: ${req.get('to')};tag=${toTag}`,
    `Call-ID: ${req.get('call-id')}`,
    `CSeq: ${req.get('cseq')}`,
    `Expires: ${expires}`,
    `Contact: ${contact}`,
    'Content-Length: 0', '', '',
  ].join('\r\n');
}

function notify(sub, { toTag = 'hubtag', cseq = 1, state = 'active;expires=600', body = '', type = '' } = {}) {
  const from = sub.get('from');
  return [
    'NOTIFY sip:x@y.invalid;transport=ws SIP/2.0',
    'Via: SIP/2.0/WS hub.invalid;branch=z9hG4bKn' + cseq,
    `From: <sip:${/sip:([^@]+)/.exec(sub.uri)[1]}@hub.test>;tag=${toTag}`,
    `To: ${from}`,
    `Call-ID: ${sub.get('call-id')}`,
    `CSeq: ${cseq} NOTIFY`,
    `Event: ${sub.get('event')}`,
    `Subscription-State: ${state}`,
    'Contact: <sip:hub@hub.test;transport=ws>',
    ...(type ? [`Content-Type: ${type}`] : []),
    `Content-Length: ${body.length}`, '', body,
  ].join('\r\n');
}

const DIALOG_BODY = '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1002@hub.test"/>';

// established: a console watching 1002 whose two subscriptions were accepted.
function established() {
  const c = newConsole();
  c.ws().open();
  const [dlg, pres] = c.ws().take().map(parse);
  c.ws().receive(ok200(dlg));
  c.ws().receive(ok200(pres));
  return { ...c, dlg, pres };
}

test('Subscriber_Open_SubscribesDialogAndPresence', () => {
  const c = newConsole(['1002']);
  assert.equal(c.ws().url, 'ws://hub.test/ws?access_token=t');
  assert.equal(c.ws().requested, 'sip');
  c.ws().open();
  const sent = c.ws().take().map(parse);
  assert.equal(sent.length, 2);
  const want = { dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml' };
  for (const m of sent) {
    assert.equal(m.method, 'SUBSCRIBE');
    assert.equal(m.uri, 'sip:1002@hub.test');
    assert.equal(m.get('to'), '<sip:1002@hub.test>');
    assert.match(m.get('from'), /<sip:1001@hub\.test>;tag=\w+/);
    assert.match(m.get('via'), /^SIP\/2\.0\/WS \w+\.invalid;branch=z9hG4bK\w+$/);
    assert.match(m.get('contact'), /^<sip:\w+@\w+\.invalid;transport=ws>$/);
    assert.equal(m.get('accept'), want[m.get('event')]);
    assert.equal(m.get('expires'), '600');
    assert.equal(m.get('cseq'), '1 SUBSCRIBE');
  }
  assert.deepEqual(sent.map((m) => m.get('event')).sort(), ['dialog', 'presence']);
  assert.notEqual(sent[0].get('call-id'), sent[1].get('call-id'));
  assert.equal(c.statuses.at(-1).state, 'connected');
});

test('Subscriber_WrongSubprotocol_Reconnects', () => {
  const c = newConsole();
  c.ws().open('');
  assert.equal(c.statuses.at(-1).state, 'reconnecting');
});

test('Subscriber_Notify_AnsweredWith200CopyingHeaders', () => {
  const c = established();
  const n = notify(c.dlg, { body: DIALOG_BODY, type: 'application/dialog-info+xml' });
  c.ws().receive(n);
  const [res] = c.ws().take().map(parse);
  const req = parse(n);
  assert.equal(res.status, 200);
  for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) assert.equal(res.get(h), req.get(h), h);
  const u = c.updates.at(-1);
  assert.deepEqual([u.ext, u.event, u.state, u.body, u.contentType],
    ['1002', 'dialog', 'active', DIALOG_BODY, 'application/dialog-info+xml']);
});

test('Subscriber_NotifyBefore200_Accepted', () => {
  const c = newConsole();
  c.ws().open();
  const [dlg] = c.ws().take().map(parse);
  c.ws().receive(notify(dlg, { body: DIALOG_BODY, type: 'application/dialog-info+xml' }));
  assert.equal(parse(c.ws().take()[0]).status, 200);
  assert.equal(c.updates.at(-1).body, DIALOG_BODY);
});

test('Subscriber_NotifyProblems_Refused', async (t) => {
  const cases = [
    { name: 'unknown Call-ID', edit: (s) => s.replace(/Call-ID: \S+/, 'Call-ID: nope'), status: 481 },
    { name: 'wrong To tag', edit: (s) => s.replace(/(To: .*;tag=)\w+/, '$1other'), status: 481 },
    { name: 'no Subscription-State', edit: (s) => s.replace(/Subscription-State: .*\r\n/, ''), status: 400 },
    { name: 'other event', edit: (s) => s.replace(/Event: dialog/, 'Event: presence'), status: 489 },
  ];
  for (const tc of cases) {
    await t.test(tc.name, () => {
      const c = established();
      c.ws().receive(tc.edit(notify(c.dlg)));
      assert.equal(parse(c.ws().take()[0]).status, tc.status);
    });
  }
});

test('Subscriber_NotifyLowerCSeq_Returns500', () => {
  const c = established();
  c.ws().receive(notify(c.dlg, { cseq: 5 }));
  c.ws().receive(notify(c.dlg, { cseq: 4 }));
  assert.deepEqual(c.ws().take().map((s) => parse(s).status), [200, 500]);
});

test('Subscriber_CRLFPing_AnsweredWithCRLF', () => {
  const c = established();
  c.ws().sent = [];
  c.ws().receive('\r\n\r\n');
  assert.deepEqual(c.ws().sent, ['\r\n']);
  c.ws().receive('\r\n'); // a pong is not answered
  assert.deepEqual(c.ws().sent, ['\r\n']);
});

test('Subscriber_Options_Answered200', () => {
  const c = established();
  c.ws().receive('OPTIONS sip:x@y.invalid SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bKo\r\n' +
    'From: <sip:hub@hub.test>;tag=a\r\nTo: <sip:x@y.invalid>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n');
  const res = parse(c.ws().take()[0]);
  assert.equal(res.status, 200);
  assert.match(res.get('to'), /;tag=\w+/);
});

test('Subscriber_BeforeExpiry_RefreshesInDialog', () => {
  const c = established();
  c.clock.advance(refreshDelay(600) - 1);
  assert.equal(c.ws().take().length, 0);
  c.clock.advance(1);
  const sent = c.ws().take().map(parse);
  assert.equal(sent.length, 2);
  const r = sent.find((m) => m.get('event') === 'dialog');
  assert.equal(r.uri, 'sip:hub@hub.test;transport=ws'); // the dialog's remote target
  assert.equal(r.get('call-id'), c.dlg.get('call-id'));
  assert.equal(r.get('from'), c.dlg.get('from'));
  assert.equal(r.get('to'), '<sip:1002@hub.test>;tag=hubtag');
  assert.equal(r.get('cseq'), '2 SUBSCRIBE');
  assert.equal(r.get('expires'), '600');
});

test('Subscriber_RefreshAnswered481_SubscribesAfresh', () => {
  const c = established();
  c.clock.advance(refreshDelay(600));
  const r = c.ws().take().map(parse).find((m) => m.get('event') === 'dialog');
  c.ws().receive(ok200(r).replace('200 OK', '481 Subscription Does Not Exist'));
  const [fresh] = c.ws().take().map(parse);
  assert.equal(fresh.get('event'), 'dialog');
  assert.notEqual(fresh.get('call-id'), c.dlg.get('call-id'));
  assert.equal(fresh.get('to'), '<sip:1002@hub.test>');
});

test('Subscriber_NotExpiresUnrefreshed_LampGoesUnknown', () => {
  const c = established();
  c.ws().receive(notify(c.dlg, { body: DIALOG_BODY, type: 'application/dialog-info+xml' }));
  c.clock.advance(refreshDelay(600));
  c.ws().take(); // refreshes sent, never answered (Timer F fires after 32 s, then back-off)
  c.clock.advance(600_000);
  assert.ok(c.updates.some((u) => u.event === 'dialog' && u.body === null && u.reason === 'subscription expired'));
});

test('Subscriber_Terminated_ResubscribesPerRFC6665', async (t) => {
  const cases = [
    { state: 'terminated;reason=deactivated', after: 0, again: true },
    { state: 'terminated;reason=timeout', after: 0, again: true },
    { state: 'terminated;reason=giveup;retry-after=30', after: 30_000, again: true },
    { state: 'terminated;reason=probation', after: 1000, again: true },
    { state: 'terminated', after: 1000, again: true },
    { state: 'terminated;reason=noresource', again: false },
    { state: 'terminated;reason=rejected', again: false },
    { state: 'terminated;reason=invariant', again: false },
  ];
  for (const tc of cases) {
    await t.test(tc.state, () => {
      const c = established();
      c.ws().receive(notify(c.dlg, { state: tc.state }));
      const [answer, ...rest] = c.ws().take().map(parse);
      assert.equal(answer.status, 200);
      const u = c.updates.find((x) => x.event === 'dialog' && x.body === null && /terminated/.test(x.reason));
      assert.ok(u, 'lamp state dropped');
      if (!tc.again) {
        c.clock.advance(3_600_000);
        assert.equal(c.ws().take().filter((m) => /Event: dialog/.test(m)).length, 0);
        assert.equal(c.updates.filter((x) => x.event === 'dialog').at(-1).state, 'failed');
        return;
      }
      if (tc.after > 0) {
        c.clock.advance(tc.after - 1);
        assert.equal(c.ws().take().length, 0, 'too early');
        c.clock.advance(1);
      }
      const [again] = tc.after > 0 ? c.ws().take().map(parse) : rest;
      assert.equal(again.get('event'), 'dialog');
      assert.equal(again.get('to'), '<sip:1002@hub.test>');
      assert.notEqual(again.get('call-id'), c.dlg.get('call-id'));
    });
  }
});

test('Subscriber_SubscribeRefused_RetriesOnlyWhenWorthIt', async (t) => {
  const cases = [
    { answer: '503 Service Unavailable\r\nRetry-After: 7', after: 7000 },
    { answer: '500 Server Error', after: 1000 },
    { answer: '403 Forbidden', after: null },
    { answer: '489 Bad Event', after: null },
  ];
  for (const tc of cases) {
    await t.test(tc.answer, () => {
      const c = newConsole();
      c.ws().open();
      const dlg = c.ws().take().map(parse).find((m) => m.get('event') === 'dialog');
      c.ws().receive(ok200(dlg).replace('200 OK', tc.answer));
      if (tc.after === null) {
        assert.equal(c.updates.at(-1).state, 'failed');
        c.clock.advance(600_000);
        assert.equal(c.ws().take().filter((s) => /Event: dialog/.test(s)).length, 0);
        return;
      }
      assert.equal(c.updates.at(-1).state, 'retrying');
      c.clock.advance(tc.after - 1);
      assert.equal(c.ws().take().length, 0);
      c.clock.advance(1);
      assert.equal(c.ws().take().length, 1);
    });
  }
});

test('Subscriber_423_RetriesWithMinExpires', () => {
  const c = newConsole();
  c.ws().open();
  const dlg = c.ws().take().map(parse).find((m) => m.get('event') === 'dialog');
  c.ws().receive(ok200(dlg).replace('200 OK', '423 Interval Too Brief\r\nMin-Expires: 1800'));
  const [again] = c.ws().take().map(parse);
  assert.equal(again.get('expires'), '1800');
});

test('Subscriber_SocketLost_LampsUnknownThenFreshSubscriptions', () => {
  const c = established();
  c.ws().receive(notify(c.dlg, { body: DIALOG_BODY, type: 'application/dialog-info+xml' }));
  c.ws().take();
  const first = c.ws();
  const mark = c.updates.length;
  first.drop(1006);
  const st = c.statuses.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.retryAt - c.clock.now(), 1000); // 1 s, jitter centred by random()=0.5
  const offline = c.updates.slice(mark).filter((u) => u.state === 'offline');
  assert.deepEqual(offline.map((u) => u.event).sort(), ['dialog', 'presence']);
  assert.ok(offline.every((u) => u.body === null));

  c.clock.advance(1000);
  assert.notEqual(c.ws(), first);
  c.ws().drop(1006); // hub still down: back-off doubles
  assert.equal(c.statuses.at(-1).retryAt - c.clock.now(), 2000);
  c.clock.advance(2000);
  c.ws().open();
  const fresh = c.ws().take().map(parse);
  assert.equal(fresh.length, 2);
  for (const m of fresh) {
    assert.equal(m.get('to'), '<sip:1002@hub.test>');
    assert.notEqual(m.get('call-id'), c.dlg.get('call-id'));
  }
});

test('Subscriber_KeepaliveUnanswered_Reconnects', () => {
  const c = established();
  c.ws().autoPong = false;
  c.ws().sent = [];
  c.clock.advance(30_000);
  assert.deepEqual(c.ws().sent, ['\r\n\r\n']);
  c.clock.advance(9_999);
  assert.equal(c.statuses.at(-1).state, 'connected');
  c.clock.advance(1);
  assert.equal(c.statuses.at(-1).state, 'reconnecting');
});

test('Subscriber_KeepaliveAnswered_StaysConnected', () => {
  const c = established();
  for (let i = 0; i < 5; i++) {
    c.clock.advance(30_000);
    c.ws().receive('\r\n');
  }
  assert.equal(c.statuses.at(-1).state, 'connected');
});

test('Subscriber_Stop_UnsubscribesWithExpires0', () => {
  const c = established();
  const ws = c.ws();
  c.s.stop();
  const sent = ws.take().map(parse);
  assert.equal(sent.length, 2);
  for (const m of sent) {
    assert.equal(m.get('expires'), '0');
    assert.match(m.get('to'), /;tag=hubtag$/);
    assert.equal(m.get('cseq'), '2 SUBSCRIBE');
  }
  assert.ok(ws.closed);
  assert.equal(c.statuses.at(-1).state, 'stopped');
  c.clock.advance(600_000);
  assert.equal(c.WS.all.length, 1, 'no reconnect after stop');
});

test('Subscriber_Unwatch_UnsubscribesAndAnswersFinalNotify', () => {
  const c = established();
  c.s.watch([]);
  const sent = c.ws().take().map(parse);
  assert.deepEqual(sent.map((m) => m.get('expires')), ['0', '0']);
  c.ws().receive(notify(c.dlg, { state: 'terminated;reason=timeout' }));
  assert.equal(parse(c.ws().take()[0]).status, 200);
  c.ws().receive(notify(c.dlg, { cseq: 2, state: 'terminated;reason=timeout' }));
  assert.equal(parse(c.ws().take()[0]).status, 481);
});

test('backoff_GrowsFrom1sTo30sWithJitter', () => {
  const mid = () => 0.5;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoff(n, mid)),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoff(0, () => 0), 750);
  assert.equal(backoff(0, () => 0.999999), 1250);
  assert.equal(backoff(10, () => 0.999999), 30000);
});

test('resubscribeDelay_FollowsRFC6665Reasons', () => {
  const mid = () => 0.5;
  assert.equal(resubscribeDelay('deactivated', undefined, 0, mid), 0);
  assert.equal(resubscribeDelay('deactivated', undefined, 2, mid), 2000);
  assert.equal(resubscribeDelay('probation', 12, 0, mid), 12000);
  assert.equal(resubscribeDelay(undefined, undefined, 0, mid), 1000);
  assert.equal(resubscribeDelay('rejected', 5, 0, mid), null);
  assert.equal(resubscribeDelay('noresource', undefined, 0, mid), null);
});

test('refreshDelay_LeavesMargin', () => {
  assert.equal(refreshDelay(600), 510_000);
  assert.equal(refreshDelay(3600), 3_510_000);
  assert.equal(refreshDelay(60), 42_000);
});

test('Subscriber_ListMode_OneRFC5367SubscriptionPerPackage_RefreshWithoutBody_Resync', () => {
  const clock = new FakeClock();
  const WS = fakeWebSocketClass();
  const s = new Subscriber({
    url: 'ws://hub.test/ws?access_token=t', user: '1001', domain: 'hub.test', lists: true,
    WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now, random: () => 0.5,
  });
  const updates = [];
  s.addEventListener('update', (e) => updates.push(e.detail));
  s.watch(['1002', '1003']);
  s.start();
  const ws = WS.all[0];
  ws.open();
  const subs = ws.take().map(parse);
  assert.deepEqual(subs.map((m) => m.get('event')), ['dialog', 'presence', 'message-summary']);
  for (const m of subs) {
    assert.equal(m.uri, 'sip:rls@hub.test');
    assert.equal(m.get('require'), 'recipient-list-subscribe');
    assert.equal(m.get('supported'), 'eventlist');
    assert.equal(m.get('content-type'), 'application/resource-lists+xml');
    assert.match(m.get('accept'), /^multipart\/related, application\/rlmi\+xml, /);
    assert.match(m.body, /<entry uri="sip:1002@hub.test"\/>\r\n<entry uri="sip:1003@hub.test"\/>/);
  }
  const [dlg] = subs;
  ws.receive(ok200(dlg));
  // The hub's real list NOTIFY: the whole Content-Type reaches the update (boundary, start).
  const type = 'multipart/related;type="application/rlmi+xml";start="<rlmi-x@hub.test>";boundary="rlmi-x"';
  const body = '--rlmi-x\r\nContent-ID: <rlmi-x@hub.test>\r\nContent-Type: application/rlmi+xml\r\n\r\n<list/>\r\n--rlmi-x--\r\n';
  ws.receive(notify(dlg, { body, type }));
  const last = updates[updates.length - 1];
  assert.deepEqual([last.exts, last.event, last.contentType, last.state], [['1002', '1003'], 'dialog', type, 'active']);
  // resync refreshes inside the dialog: Supported, no list body.
  s.resync('dialog');
  const [refresh] = ws.take().map(parse).filter((m) => m.method === 'SUBSCRIBE');
  assert.equal(refresh.get('call-id'), dlg.get('call-id'));
  assert.equal(refresh.get('supported'), 'eventlist');
  assert.equal(refresh.get('require'), undefined);
  assert.equal(refresh.body, '');
  // Another set of extensions is a new list subscription; the old ones are un-subscribed.
  ws.receive(ok200(refresh));
  s.watch(['1002']);
  const next = ws.take().map(parse);
  const unsub = next.filter((m) => m.get('expires') === '0');
  const fresh = next.filter((m) => m.get('expires') !== '0');
  assert.equal(unsub.length, 1); // only the dialog list had its 200
  assert.equal(fresh.length, 3);
  assert.doesNotMatch(fresh[0].body, /1003/);
});
