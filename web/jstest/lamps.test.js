import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describe, formatDuration } from '../static/lamps.js';

test('formatDuration_MinutesSecondsHours', () => {
  const cases = [[0, '0:00'], [999, '0:00'], [61_000, '1:01'], [3_599_000, '59:59'], [3_600_000, '1:00:00'], [-5000, '0:00']];
  for (const [ms, want] of cases) assert.equal(formatDuration(ms), want, String(ms));
});

test('describe_StateOnceWithPartyVoicemailAndNote', () => {
  const cases = [
    { lamp: { state: 'ringing', peer: 'Carol (2001)' }, want: 'ringing, call from Carol (2001)' },
    { lamp: { state: 'busy', peer: 'Carol (2001)', voicemail: { new: 2, old: 5 } }, want: 'busy, with Carol (2001), 2 new voicemails' },
    { lamp: { state: 'idle', peer: '', voicemail: { new: 1, old: 0 }, note: 'Back at 2' }, want: 'idle, 1 new voicemail, note: Back at 2' },
    { lamp: { state: 'idle', peer: '', voicemail: { new: 0, old: 3 } }, want: 'idle' },
    { lamp: { state: 'unknown', peer: '', reason: 'Cannot watch: not allowed' }, want: 'unknown, Cannot watch: not allowed' },
  ];
  for (const c of cases) assert.equal(describe(c.lamp), c.want);
});
