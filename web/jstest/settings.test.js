import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatExtensions, parseExtensions, takeToken, tokenClaims, tokenExpired } from '../static/settings.js';

const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}.sig`;

test('parseExtensions_ListsLabelsAndErrors', () => {
  const { list, errors } = parseExtensions(' 1001:Front desk, 1002\n1003:Sales ,1002, ,bad ext, alice.b');
  assert.deepEqual(list, [
    { ext: '1001', label: 'Front desk', group: '' },
    { ext: '1002', label: '', group: '' },
    { ext: '1003', label: 'Sales', group: '' },
    { ext: 'alice.b', label: '', group: '' },
  ]);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /"bad ext"/);
  assert.equal(formatExtensions(list), '1001:Front desk, 1002, 1003:Sales, alice.b');
});

test('parseExtensions_Groups', () => {
  const { list } = parseExtensions('1000, [Sales] 1001:Ann, 1002\n[ Support ]1003,[]1004');
  assert.deepEqual(list.map((x) => `${x.group}/${x.ext}`), ['/1000', 'Sales/1001', 'Sales/1002', 'Support/1003', '/1004']);
  assert.equal(formatExtensions(list), '1000, [Sales] 1001:Ann, 1002, [Support] 1003, [] 1004');
  assert.deepEqual(parseExtensions(formatExtensions(list)).list, list);
});

test('tokenClaims_DecodesPayload', () => {
  assert.deepEqual(tokenClaims(jwt({ sub: '1001', domain: 'hub.test', exp: 10, name: 'Zoë' })),
    { sub: '1001', domain: 'hub.test', exp: 10, name: 'Zoë' });
  assert.equal(tokenClaims('nope'), null);
  assert.equal(tokenClaims('a.!!!.c'), null);
});

test('tokenExpired_WithLeeway', () => {
  assert.equal(tokenExpired({ exp: 100 }, 100_000 + 4000), false);
  assert.equal(tokenExpired({ exp: 100 }, 100_000 + 6000), true);
  assert.equal(tokenExpired({}, 1e15), false);
});

test('takeToken_FromURLThenSessionStorage', () => {
  const store = new Map();
  const win = {
    location: { href: 'http://hub.test:8080/?token=abc&ext=1001#x' },
    history: { state: null, replaceState(_s, _t, url) { win.location.href = 'http://hub.test:8080' + url; } },
    sessionStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) },
  };
  assert.equal(takeToken(win), 'abc');
  assert.equal(win.location.href, 'http://hub.test:8080/?ext=1001#x');
  assert.equal(takeToken(win), 'abc');
});
