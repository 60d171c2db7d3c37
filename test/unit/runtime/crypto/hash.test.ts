import { randomBytes } from 'node:crypto';
import { blake2b } from '@noble/hashes/blake2.js';
import * as assert from 'uvu/assert';
import {
  blake2b256,
  blake2b256Hex,
  bytesEqual,
  fastHashLoaded,
  fromHex,
  loadFastHash,
  toHex,
} from '../../../../runtime/crypto/hash.js';
import { describe } from '../../../helpers/test.js';

const test = describe('runtime/crypto/hash');
const utf8 = (s: string) => new TextEncoder().encode(s);

function knownAnswers(): void {
  // Reference values: Python hashlib.blake2b(data, digest_size=32).
  assert.is(
    blake2b256Hex(new Uint8Array()),
    '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8',
  );
  assert.is(
    blake2b256Hex(utf8('abc')),
    'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319',
  );
  const kb = new Uint8Array(1024).map((_, i) => i & 0xff);
  assert.is(
    toHex(blake2b256(kb)),
    'f1551feeb252c7e60bb362205bd1ac2f70b145260a91d41e8c5d0a187549a5f2',
  );
  assert.is(blake2b256(kb).length, 32);
}

// Tests run in order: the first ones hash with the fallback (noble), then the thread loads the
// WebAssembly hasher, as the journal writer does at start.
test('BLAKE2b-256 known answers before loadFastHash (the noble fallback of most threads)', () => {
  assert.not.ok(fastHashLoaded());
  knownAnswers();
});

test('loadFastHash switches the thread to the WebAssembly hasher, idempotently; same known answers', async () => {
  await loadFastHash();
  await loadFastHash();
  assert.ok(fastHashLoaded());
  knownAnswers();
});

test('BLAKE2b-256 is not truncated BLAKE2b-512', async () => {
  const { createHash } = await import('node:crypto');
  const truncated = createHash('blake2b512').update('abc').digest('hex').slice(0, 64);
  assert.is.not(blake2b256Hex(utf8('abc')), truncated);
});

test('hashing a subarray hashes only its bytes', () => {
  const big = utf8('xxabcxx');
  assert.is(blake2b256Hex(big.subarray(2, 5)), blake2b256Hex(utf8('abc')));
});

test('toHex / fromHex round trip, strictly', () => {
  const b = Uint8Array.from([0, 1, 0xab, 0xff]);
  assert.is(toHex(b), '0001abff');
  assert.is(toHex(Uint8Array.from([9, 0, 1, 0xab, 0xff, 9]).subarray(1, 5)), '0001abff');
  assert.equal(fromHex('0001ABff'), b);
  assert.is(fromHex('').length, 0);
  for (const bad of ['0', 'zz', '00 11', '0x00', '001g']) {
    try {
      fromHex(bad);
      assert.unreachable(`fromHex(${bad}) must throw`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_BAD_ENCODING', bad);
    }
  }
  assert.throws(
    () => fromHex('0011', 1),
    (e: { code?: string }) => e.code === 'ERR_BAD_ENCODING',
  );
  assert.is(fromHex('0011', 2).length, 2);
});

test('bytesEqual', () => {
  assert.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.not.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.not.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)));
});

test('the WebAssembly BLAKE2b-256 agrees with the noble reference on every length 0..1024 and random inputs', () => {
  assert.ok(fastHashLoaded());
  for (let len = 0; len <= 1024; len++) {
    const data = randomBytes(len);
    assert.equal(blake2b256(data), blake2b(data, { dkLen: 32 }), `length ${len}`);
  }
});

test.run();
