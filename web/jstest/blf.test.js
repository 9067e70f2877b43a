import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lampOf, mergeDialogInfo, peerOf } from '../static/blf.js';

// dialog builds the model readDialogInfo returns.
function dialog(state, direction, { id = 'd1', rendering = '', remote = {} } = {}) {
  return {
    id, callId: '', direction, state,
    local: { identity: 'sip:1002@hub.test', display: '', target: '', rendering },
    remote: { identity: '', display: '', target: '', rendering: '', ...remote },
  };
}
const info = (...dialogs) => ({ version: 0, full: true, entity: 'sip:1002@hub.test', dialogs });
const pres = (basic, { activities = [], note = '' } = {}) => ({ basic, activities, note });
const bob = { identity: 'sip:1003@hub.test', display: 'Bob' };

test('lampOf_Rules', () => {
  const cases = [
    { name: 'no dialog state yet', d: null, p: pres('open'), want: 'unknown' },
    { name: 'no dialogs, presence open', d: info(), p: pres('open'), want: 'idle' },
    { name: 'no dialogs, presence unknown', d: info(), p: null, want: 'idle' },
    { name: 'no dialogs, presence closed', d: info(), p: pres('closed'), want: 'offline' },
    { name: 'early recipient', d: info(dialog('early', 'recipient', { remote: bob })), p: pres('open'), want: 'ringing', peer: 'Bob (1003)' },
    { name: 'proceeding recipient', d: info(dialog('proceeding', 'recipient')), p: null, want: 'ringing' },
    { name: 'trying, no direction', d: info(dialog('trying', '')), p: null, want: 'ringing' },
    { name: 'early initiator', d: info(dialog('early', 'initiator', { remote: bob })), p: null, want: 'calling', peer: 'Bob (1003)' },
    { name: 'confirmed', d: info(dialog('confirmed', 'initiator', { remote: bob })), p: null, want: 'busy', peer: 'Bob (1003)' },
    { name: 'confirmed, presence closed', d: info(dialog('confirmed', 'recipient')), p: pres('closed'), want: 'busy' },
    { name: 'terminated only', d: info(dialog('terminated', 'recipient')), p: pres('open'), want: 'idle' },
    { name: 'confirmed, not rendering', d: info(dialog('confirmed', 'recipient', { rendering: 'no' })), p: null, want: 'hold' },
    { name: 'confirmed + on-the-phone hold note', d: info(dialog('confirmed', 'recipient')), p: pres('open', { activities: ['on-the-phone'], note: 'On hold' }), want: 'hold' },
    { name: 'one held, one talking', d: info(dialog('confirmed', 'recipient', { rendering: 'no' }), dialog('confirmed', 'initiator', { id: 'd2' })), p: null, want: 'busy' },
    { name: 'ringing wins over a call', d: info(dialog('confirmed', 'initiator'), dialog('early', 'recipient', { id: 'd2' })), p: null, want: 'ringing' },
    { name: 'busy wins over calling', d: info(dialog('early', 'initiator'), dialog('confirmed', 'recipient', { id: 'd2' })), p: null, want: 'busy' },
    // A PBX that publishes dialog state but no presence (or whose phone just unregistered, so
    // the hub has no presence source and says closed): the dialog state decides, never Offline.
    { name: 'PBX dialog, no presence source: caller trying', d: info(dialog('trying', 'initiator')), p: pres('closed'), want: 'calling' },
    { name: 'PBX dialog, no presence source: callee early', d: info(dialog('early', 'recipient')), p: pres('closed'), want: 'ringing' },
    { name: 'PBX dialog, no presence source: on hold', d: info(dialog('confirmed', 'recipient', { rendering: 'no' })), p: pres('closed'), want: 'hold' },
    { name: 'presence-only phone on the phone', d: info(), p: pres('open', { activities: ['on-the-phone'] }), want: 'busy' },
  ];
  for (const tc of cases) {
    const got = lampOf(tc.d, tc.p);
    assert.equal(got.state, tc.want, tc.name);
    if (tc.peer !== undefined) assert.equal(got.peer, tc.peer, tc.name);
  }
});

test('lampOf_CarriesPresenceNote', () => {
  assert.equal(lampOf(info(), pres('open', { note: 'Back at 2' })).note, 'Back at 2');
  assert.equal(lampOf(null, pres('open', { note: 'Back at 2' })).note, 'Back at 2');
});

test('peerOf_DisplayOrUri', () => {
  assert.equal(peerOf({ remote: { identity: 'sip:9@x', display: '' } }), '9@x');
  assert.equal(peerOf({ remote: { identity: 'sip:9@x;user=phone', display: 'Nine' } }, 'x'), 'Nine (9)');
  assert.equal(peerOf({ remote: { identity: 'sip:9@y', display: '' } }, 'x'), '9@y');
  assert.equal(peerOf({ remote: { identity: '', display: 'Carol' } }), 'Carol');
  assert.equal(peerOf({ remote: { identity: '', target: 'sips:t@x', display: '' } }), 't@x');
  assert.equal(peerOf({}), '');
});

test('mergeDialogInfo_FullPartialStale', () => {
  const v = (version, full, ...dialogs) => ({ ...info(...dialogs), version, full });
  let cur = mergeDialogInfo(null, v(0, true, dialog('early', 'recipient')));
  assert.equal(cur.dialogs.length, 1);
  cur = mergeDialogInfo(cur, v(1, false, dialog('confirmed', 'recipient')));
  assert.equal(cur.dialogs[0].state, 'confirmed');
  cur = mergeDialogInfo(cur, v(2, false, dialog('early', 'initiator', { id: 'd2' })));
  assert.equal(cur.dialogs.length, 2);
  const stale = mergeDialogInfo(cur, v(2, true));
  assert.equal(stale, cur, 'same version ignored');
  cur = mergeDialogInfo(cur, v(3, false, dialog('terminated', 'recipient')));
  assert.deepEqual(cur.dialogs.map((d) => d.id), ['d2']);
  cur = mergeDialogInfo(cur, v(4, true));
  assert.equal(cur.dialogs.length, 0);
});
