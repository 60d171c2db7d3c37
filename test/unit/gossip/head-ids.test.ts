/**
 * Head ids in version vectors (actors/gossip/frames.ts): `vv` and `have`
 * may carry `ids` (author → id of its head entry) so two nodes at one seq
 * with different entries find the fork. Optional on the wire, bounded, and
 * only hex ids of DIDs are accepted.
 */
import * as assert from 'uvu/assert';
import {
  MAX_HEADS_PER_FRAME,
  decodeFrame,
  encodeFrame,
  vvFrames,
} from '../../../actors/gossip/frames.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('gossip/head-ids');

const alice = keyOf(1).did;
const bob = keyOf(2).did;

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
  return 'accepted';
};

test('vv and have with ids round-trip; without ids they decode as before', () => {
  for (const frame of [
    { t: 'vv', heads: { [alice]: 3, [bob]: 1 }, more: false, ids: { [alice]: fakeId(3) } },
    { t: 'have', heads: { [alice]: 3 }, ids: { [alice]: fakeId(3) } },
    { t: 'vv', heads: { [alice]: 3 }, more: false },
    { t: 'have', heads: { [alice]: 3 } },
  ] as const) {
    assert.equal(decodeFrame(encodeFrame(frame as never), false, 10), frame);
  }
});

test('ids that are not 64 lowercase hex digits, keyed by a non-DID, or too many are ERR_BAD_FRAME', () => {
  const bad = [
    { [alice]: 'ab' },
    { [alice]: fakeId(1).toUpperCase().replace(/^0/, 'A') },
    { 'did:key:nope': fakeId(1) },
    { [alice]: 7 },
  ];
  for (const ids of bad) {
    const text = JSON.stringify({ t: 'have', heads: { [alice]: 1 }, ids });
    assert.is(
      codeOf(() => decodeFrame(text, false, 10)),
      'ERR_BAD_FRAME',
      text,
    );
  }
  const many: Record<string, string> = {};
  const base = alice.slice(0, -4);
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  for (let i = 0; i <= MAX_HEADS_PER_FRAME; i++) {
    let suffix = '';
    for (let k = i, d = 0; d < 4; d++, k = Math.floor(k / 58)) suffix += ALPHABET[k % 58];
    many[base + suffix] = fakeId(i);
  }
  const text = JSON.stringify({ t: 'vv', heads: {}, more: false, ids: many });
  assert.is(
    codeOf(() => decodeFrame(text, false, 10)),
    'ERR_BAD_FRAME',
    'over the ids limit',
  );
});

test('vvFrames puts each chunk’s known ids in that chunk and leaves ids out where none are known', () => {
  const all = { [alice]: 2, [bob]: 5 };
  assert.equal(vvFrames(all, new Map()), [{ t: 'vv', heads: all, more: false }]);
  assert.equal(vvFrames(all, new Map([[bob, fakeId(5)]])), [
    { t: 'vv', heads: all, more: false, ids: { [bob]: fakeId(5) } },
  ]);
  // An id for an author not in the vector is not sent.
  assert.equal(vvFrames({ [alice]: 2 }, new Map([[bob, fakeId(5)]])), [
    { t: 'vv', heads: { [alice]: 2 }, more: false },
  ]);
});

test.run();
