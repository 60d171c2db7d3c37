/**
 * The gossip frame codec (actors/gossip/frames.ts): every frame type
 * round-trips through encodeFrame/decodeFrame, and everything that is not a
 * frame of version 1 is refused with ERR_BAD_FRAME, each case naming the
 * exact input tried.
 */
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import {
  MAX_ENTRIES_LIMIT,
  MAX_HEADS_PER_FRAME,
  PROTOCOL_VERSIONS,
  decodeFrame,
  encodeFrame,
  vvFrames,
} from '../../../actors/gossip/frames.js';
import type { Frame } from '../../../actors/gossip/frames.js';
import { Feed, bodies, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('gossip/frames');

const alice = keyOf(1);
const bob = keyOf(2);
const MAX = 50;

const nonce = () => randomBytes(32).toString('base64url');
const sig = () => randomBytes(64).toString('base64url');

/** `n` distinct valid DIDs (deterministic keys from several seeds would be slow: vary the text). */
function dids(n: number): string[] {
  const base = alice.did.slice(0, -6);
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  return Array.from({ length: n }, (_, i) => {
    let suffix = '';
    for (let k = i, d = 0; d < 6; d++, k = Math.floor(k / 58)) suffix += ALPHABET[k % 58];
    return base + suffix;
  });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `no code: ${String(err)}`;
  }
  return 'accepted';
}

function framesOfEveryType(): Frame[] {
  const feed = new Feed(alice);
  const [e1, e2] = feed.fill(2);
  const other = feed.make('offer', bodies.offer());
  const fork = feed.make('node', bodies.node(99));
  return [
    { t: 'hello', versions: [...PROTOCOL_VERSIONS], did: alice.did, nonce: nonce() },
    {
      t: 'hello',
      versions: [...PROTOCOL_VERSIONS],
      did: alice.did,
      nonce: nonce(),
      mesh: 'a'.repeat(64),
      invite: 'mni1.e30.' + 'A'.repeat(86),
    },
    { t: 'joinRes', ok: true, mesh: 'a'.repeat(64), member: 'b'.repeat(64) },
    { t: 'joinRes', ok: false, code: 'ERR_INVITE_USED', reason: 'the token was already redeemed' },
    { t: 'auth', version: 1, sig: sig() },
    { t: 'vv', heads: { [alice.did]: 2, [bob.did]: 0 }, more: false },
    { t: 'vv', heads: {}, more: true },
    { t: 'have', heads: { [alice.did]: 3 } },
    { t: 'want', author: alice.did, from: 1, to: 1 },
    { t: 'want', author: alice.did, from: 3, to: 500 },
    {
      t: 'entries',
      author: alice.did,
      from: 1,
      entries: [e1, e2] as unknown as Array<Record<string, unknown>>,
    },
    { t: 'entries', author: alice.did, from: 7, entries: [] },
    {
      t: 'proof',
      author: alice.did,
      seq: 3,
      entries: [other, fork] as unknown as [Record<string, unknown>, Record<string, unknown>],
    },
  ];
}

test('every frame type round-trips through encodeFrame and decodeFrame', () => {
  const seen = new Set<string>();
  for (const frame of framesOfEveryType()) {
    const text = encodeFrame(frame);
    assert.type(text, 'string');
    assert.equal(decodeFrame(text, false, MAX), frame, `round trip of ${text.slice(0, 80)}`);
    assert.equal(decodeFrame(Buffer.from(text), false, MAX), frame, 'from a Buffer too');
    seen.add(frame.t);
  }
  assert.equal([...seen].sort(), [
    'auth',
    'entries',
    'have',
    'hello',
    'joinRes',
    'proof',
    'vv',
    'want',
  ]);
});

test('a hello with an oversize invite, or a mesh that is not an id, is ERR_BAD_FRAME', () => {
  const base = { t: 'hello', versions: [...PROTOCOL_VERSIONS], did: alice.did, nonce: nonce() };
  for (const extra of [
    { invite: 'x'.repeat(5000) },
    { mesh: 'not-an-id' },
    { mesh: 'A'.repeat(64) },
    { invite: 7 },
    { admin: true },
  ]) {
    assert.is(
      codeOf(() => decodeFrame(JSON.stringify({ ...base, ...extra }), false, MAX)),
      'ERR_BAD_FRAME',
      JSON.stringify(extra).slice(0, 40),
    );
  }
});

test('a binary message is ERR_BAD_FRAME even when its bytes are a valid frame', () => {
  const text = encodeFrame({ t: 'have', heads: {} });
  assert.is(
    codeOf(() => decodeFrame(Buffer.from(text), true, MAX)),
    'ERR_BAD_FRAME',
  );
});

test('text that is not JSON, or JSON that is not a frame object, is ERR_BAD_FRAME', () => {
  const inputs = [
    '',
    'hello',
    '{"t":"have","heads":{}',
    '\u0000\u0001\u0002',
    'null',
    '42',
    '"have"',
    '[]',
    '[{"t":"have","heads":{}}]',
    '{}',
    '{"heads":{}}',
  ];
  for (const input of inputs) {
    assert.is(
      codeOf(() => decodeFrame(input, false, MAX)),
      'ERR_BAD_FRAME',
      `tried ${input}`,
    );
  }
  const garbage = randomBytes(256);
  assert.is(
    codeOf(() => decodeFrame(garbage, false, MAX)),
    'ERR_BAD_FRAME',
    'random bytes as text',
  );
});

test('an unknown frame type is ERR_BAD_FRAME', () => {
  for (const t of ['bye', 'HELLO', 'entry', '', 1, null]) {
    const input = JSON.stringify({ t, heads: {} });
    assert.is(
      codeOf(() => decodeFrame(input, false, MAX)),
      'ERR_BAD_FRAME',
      `tried ${input}`,
    );
  }
});

/** Fields a frame may leave out (frames.ts marks them optional). */
const OPTIONAL: Record<string, string[]> = {
  hello: ['mesh', 'invite'],
  joinRes: ['code', 'reason', 'mesh', 'member'],
};

test('a known frame with an extra or a missing field is ERR_BAD_FRAME', () => {
  for (const frame of framesOfEveryType()) {
    const extra = JSON.stringify({ ...frame, extra: 1 });
    assert.is(
      codeOf(() => decodeFrame(extra, false, MAX)),
      'ERR_BAD_FRAME',
      `tried ${extra}`,
    );
    for (const field of Object.keys(frame).filter(
      (k) => k !== 't' && !OPTIONAL[frame.t]?.includes(k),
    )) {
      const missing: Record<string, unknown> = { ...frame };
      delete missing[field];
      const input = JSON.stringify(missing);
      assert.is(
        codeOf(() => decodeFrame(input, false, MAX)),
        'ERR_BAD_FRAME',
        `${frame.t} without ${field}`,
      );
    }
  }
});

test('a malformed DID anywhere a DID goes is ERR_BAD_FRAME', () => {
  const bad = [
    'did:key:z6Mk',
    alice.did.slice(0, -1),
    alice.did + 'x',
    alice.did.replace('did:key:', 'did:web:'),
    alice.did.slice(0, -1) + '0', // 0 is not base58
    alice.did.replace('z6Mk', 'z6LS'), // an X25519 key, not Ed25519
    '',
    42,
  ];
  for (const did of bad) {
    const frames = [
      { t: 'hello', versions: [1], did, nonce: nonce() },
      { t: 'want', author: did, from: 1, to: 2 },
      { t: 'entries', author: did, from: 1, entries: [] },
      { t: 'proof', author: did, seq: 1, entries: [{}, {}] },
      { t: 'have', heads: { [String(did)]: 1 } },
      { t: 'vv', heads: { [String(did)]: 1 }, more: false },
    ];
    for (const f of frames) {
      const input = JSON.stringify(f);
      assert.is(
        codeOf(() => decodeFrame(input, false, MAX)),
        'ERR_BAD_FRAME',
        `tried ${input}`,
      );
    }
  }
});

test('fields out of range are ERR_BAD_FRAME: seqs, heads, nonce, sig, versions', () => {
  const d = alice.did;
  const cases: unknown[] = [
    { t: 'hello', versions: [], did: d, nonce: nonce() },
    { t: 'hello', versions: [0], did: d, nonce: nonce() },
    { t: 'hello', versions: [1.5], did: d, nonce: nonce() },
    { t: 'hello', versions: Array(17).fill(1), did: d, nonce: nonce() },
    { t: 'hello', versions: [1], did: d, nonce: nonce().slice(1) },
    { t: 'hello', versions: [1], did: d, nonce: nonce().slice(1) + '=' },
    { t: 'auth', version: 0, sig: sig() },
    { t: 'auth', version: 1, sig: sig().slice(1) },
    { t: 'auth', version: 1, sig: sig().slice(1) + '+' },
    { t: 'want', author: d, from: 0, to: 1 },
    { t: 'want', author: d, from: 1.5, to: 2 },
    { t: 'want', author: d, from: 1, to: 2 ** 53 },
    { t: 'want', author: d, from: '1', to: 2 },
    { t: 'have', heads: { [d]: -1 } },
    { t: 'have', heads: { [d]: 1.5 } },
    { t: 'have', heads: { [d]: '3' } },
    { t: 'have', heads: [] },
    { t: 'vv', heads: {}, more: 'no' },
    { t: 'entries', author: d, from: 0, entries: [] },
    { t: 'entries', author: d, from: 1, entries: [1, 2] },
    { t: 'entries', author: d, from: 1, entries: {} },
    { t: 'proof', author: d, seq: 1, entries: [{}] },
    { t: 'proof', author: d, seq: 1, entries: [{}, {}, {}] },
    { t: 'proof', author: d, seq: 0, entries: [{}, {}] },
  ];
  for (const c of cases) {
    const input = JSON.stringify(c);
    assert.is(
      codeOf(() => decodeFrame(input, false, MAX)),
      'ERR_BAD_FRAME',
      `tried ${input}`,
    );
  }
});

test('an entries frame over this node maxEntries is ERR_BAD_FRAME; at it, accepted', () => {
  const entries = Array.from({ length: 11 }, () => ({ x: 1 }));
  const frame = { t: 'entries', author: alice.did, from: 1, entries };
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify(frame), false, 10)),
    'ERR_BAD_FRAME',
  );
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify(frame), false, 11)),
    'accepted',
  );
  const huge = { ...frame, entries: Array.from({ length: MAX_ENTRIES_LIMIT + 1 }, () => ({})) };
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify(huge), false, Number.MAX_SAFE_INTEGER)),
    'ERR_BAD_FRAME',
    'the hard limit holds whatever maxEntries says',
  );
});

test('a want whose to is before its from is ERR_BAD_FRAME; to = from is one entry', () => {
  const want = (from: number, to: number) =>
    JSON.stringify({ t: 'want', author: alice.did, from, to });
  assert.is(
    codeOf(() => decodeFrame(want(5, 4), false, MAX)),
    'ERR_BAD_FRAME',
  );
  assert.is(
    codeOf(() => decodeFrame(want(5, 5), false, MAX)),
    'accepted',
  );
});

test('a vv or have with more than MAX_HEADS_PER_FRAME heads is ERR_BAD_FRAME', () => {
  const all = dids(MAX_HEADS_PER_FRAME + 1);
  const heads = Object.fromEntries(all.map((d) => [d, 1]));
  assert.is(Object.keys(heads).length, MAX_HEADS_PER_FRAME + 1);
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify({ t: 'have', heads }), false, MAX)),
    'ERR_BAD_FRAME',
  );
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify({ t: 'vv', heads, more: false }), false, MAX)),
    'ERR_BAD_FRAME',
  );
  delete heads[all[0]!];
  assert.is(
    codeOf(() => decodeFrame(JSON.stringify({ t: 'have', heads }), false, MAX)),
    'accepted',
    'exactly the limit',
  );
});

test('vvFrames splits a version vector into decodable chunks; only the last has more=false', () => {
  assert.equal(vvFrames({}), [{ t: 'vv', heads: {}, more: false }], 'empty: one frame');
  const small = { [alice.did]: 3, [bob.did]: 1 };
  assert.equal(vvFrames(small), [{ t: 'vv', heads: small, more: false }]);

  const all = dids(2 * MAX_HEADS_PER_FRAME + 1);
  const vv = Object.fromEntries(all.map((d, i) => [d, i + 1]));
  const frames = vvFrames(vv);
  assert.is(frames.length, 3);
  assert.equal(
    frames.map((f) => f.more),
    [true, true, false],
  );
  const merged: Record<string, number> = {};
  for (const f of frames) {
    assert.ok(Object.keys(f.heads).length <= MAX_HEADS_PER_FRAME);
    const decoded = decodeFrame(encodeFrame(f), false, MAX);
    assert.equal(decoded, f);
    Object.assign(merged, f.heads);
  }
  assert.equal(merged, vv, 'every head is sent exactly once');

  const exact = Object.fromEntries(dids(MAX_HEADS_PER_FRAME).map((d) => [d, 1]));
  assert.equal(
    vvFrames(exact).map((f) => f.more),
    [false],
    'exactly one frame full: no empty trailer',
  );
});

test.run();
