import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import * as assert from 'uvu/assert';
import {
  generateKeyPair,
  keyPairFromSeed,
  precheck,
  publicKeyCacheEntries,
  setPublicKeyCacheSize,
  sign,
  signingBackend,
  SMALL_ORDER_ENCODINGS,
  verify,
} from '../../../../runtime/crypto/ed25519.js';
import { blake2b256, fromHex, toHex } from '../../../../runtime/crypto/hash.js';
import { verifyReference } from '../../../../runtime/crypto/reference.js';
import { describe } from '../../../helpers/test.js';
import { readVectorJson } from './vectors.js';

const test = describe('runtime/crypto/ed25519', 60_000);
const { Point } = ed25519;
const L = Point.Fn.ORDER;
const P = 2n ** 255n - 19n;
const utf8 = (s: string) => new TextEncoder().encode(s);
const le32 = (n: bigint) => numberToBytesLE(n, 32);
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

/**
 * Deterministic randomness for the differential tests, reproducible from
 * MESHNODE_TEST_SEED (printed in every failure message).
 */
const RUN_SEED = process.env.MESHNODE_TEST_SEED ?? randomBytes(8).toString('hex');
let counter = 0;
function rand(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 32) {
    const block = blake2b256(utf8(`${RUN_SEED}/${counter++}`));
    out.set(block.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}
const randInt = (n: number) => Buffer.from(rand(4)).readUInt32LE() % n;
const DIFF_N = Number(process.env.MESHNODE_CRYPTO_DIFF_N ?? 2000);

interface Wycheproof {
  testGroups: {
    publicKey: { pk: string };
    tests: { tcId: number; comment: string; msg: string; sig: string; result: string }[];
  }[];
}
const wycheproof = readVectorJson<Wycheproof>('ed25519-wycheproof.json');

// --- vectors ---------------------------------------------------------------

test('every Wycheproof case gets its verdict from verify and from verifyReference', () => {
  let n = 0;
  let valid = 0;
  const wrong: string[] = [];
  for (const g of wycheproof.testGroups) {
    const pk = fromHex(g.publicKey.pk);
    for (const t of g.tests) {
      n++;
      const expected = t.result === 'valid';
      if (expected) valid++;
      const sig = fromHex(t.sig);
      const msg = fromHex(t.msg);
      const a = verify(sig, msg, pk);
      const b = verifyReference(sig, msg, pk);
      if (a !== expected || b !== expected)
        wrong.push(
          `tcId ${t.tcId} (${t.comment}): verify ${a}, reference ${b}, expected ${t.result}`,
        );
    }
  }
  assert.is(n, 151);
  assert.is(valid, 88);
  assert.equal(wrong, []);
});

/** RFC 8032 section 7.1 secret keys, for the public keys Wycheproof carries. */
const RFC8032: Record<string, { seed: string; pk: string }> = {
  'Test 1': {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  },
  'Test 2': {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
  },
  'Test 3': {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
  },
  'Test 1024': {
    seed: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    pk: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
  },
};

test('RFC 8032 7.1 vectors: keys from seeds, deterministic signatures, verification', () => {
  let found = 0;
  for (const g of wycheproof.testGroups) {
    for (const t of g.tests) {
      const m = /draft-josefsson-eddsa-ed25519-02: (Test \w+)$/.exec(t.comment);
      if (!m) continue;
      found++;
      const rfc = RFC8032[m[1]!];
      assert.ok(rfc, `no RFC 8032 key for ${m[1]}`);
      assert.is(g.publicKey.pk, rfc.pk);
      const kp = keyPairFromSeed(fromHex(rfc.seed));
      assert.is(toHex(kp.publicKey), rfc.pk, m[1]);
      const msg = fromHex(t.msg);
      assert.is(toHex(sign(kp, msg)), t.sig, `${m[1]} signature`);
      assert.is(toHex(sign(kp.privateKey, msg)), t.sig, `${m[1]} node:crypto signature`);
      assert.is(toHex(ed25519.sign(msg, fromHex(rfc.seed))), t.sig, `${m[1]} noble signature`);
      assert.ok(verify(fromHex(t.sig), msg, kp.publicKey));
      assert.ok(verifyReference(fromHex(t.sig), msg, kp.publicKey));
    }
  }
  assert.is(found, 4);
});

// --- the small-order blocklist ---------------------------------------------

test('SMALL_ORDER_ENCODINGS is exactly the 8-torsion subgroup, derived with noble', () => {
  // Every entry decodes strictly (canonical), is small-order, re-encodes to itself.
  const list = new Set(SMALL_ORDER_ENCODINGS);
  assert.is(list.size, 8);
  for (const hex of list) {
    const pt = Point.fromHex(hex, false);
    assert.ok(pt.isSmallOrder(), hex);
    assert.is(pt.toHex(), hex);
  }
  // Derive the subgroup independently: [L]Q of a random curve point Q lies in
  // the torsion subgroup; one of order 8 generates all 8 points.
  let gen: InstanceType<typeof Point> | undefined;
  for (let i = 0; gen === undefined; i++) {
    assert.ok(i < 1000, 'no point of order 8 found');
    let q;
    try {
      q = Point.fromBytes(rand(32), false);
    } catch {
      continue;
    }
    const t = q.multiply(L - 1n).add(q);
    if (!t.multiplyUnsafe(4n).is0()) gen = t;
  }
  const derived = new Set<string>();
  let acc = Point.ZERO;
  for (let i = 0; i < 8; i++) {
    derived.add(acc.toHex());
    acc = acc.add(gen);
  }
  assert.ok(acc.is0(), '8 * generator must be the identity');
  assert.equal([...derived].sort(), [...list].sort());
  assert.equal([...ED25519_TORSION_SUBGROUP].sort(), [...list].sort());
});

/** A signature (R, S) that passes the S check, with a chosen R. */
const withR = (r: Uint8Array, s = 1n) => cat(r, le32(s));
const BASE_HEX = Point.BASE.toHex();

test('small-order public keys and R are rejected, even where bare libraries accept', () => {
  const msg = utf8('any message at all');
  for (const hex of SMALL_ORDER_ENCODINGS) {
    const T = fromHex(hex);
    // (R = identity, S = 0) under a small-order A: "valid" for every message
    // in the cofactored equation (noble's zip215 default), and under the
    // identity key for bare cofactorless verifiers too.
    const universal = withR(fromHex(SMALL_ORDER_ENCODINGS[0]!), 0n);
    assert.not.ok(verify(universal, msg, T), `A = ${hex}`);
    assert.not.ok(verifyReference(universal, msg, T), `A = ${hex}`);
    assert.not.ok(precheck(universal, T));
    // Small-order R under a good key.
    const kp = generateKeyPair();
    assert.not.ok(precheck(withR(T), kp.publicKey), `R = ${hex}`);
    assert.not.ok(verify(withR(T), msg, kp.publicKey));
    assert.not.ok(verifyReference(withR(T), msg, kp.publicKey));
  }
  // Sanity: the same shapes with ordinary points pass the pre-checks.
  assert.ok(precheck(withR(fromHex(BASE_HEX)), generateKeyPair().publicKey));
});

test('non-canonical encodings of A and R (y >= p, x = 0 with the sign bit) are rejected', () => {
  const good = generateKeyPair();
  const goodR = fromHex(BASE_HEX);
  const nonCanonical: Uint8Array[] = [];
  for (let y = P; y < 2n ** 255n; y++) {
    nonCanonical.push(le32(y));
    nonCanonical.push(le32(y | (1n << 255n)));
  }
  nonCanonical.push(le32(1n | (1n << 255n)), le32(P - 1n + (1n << 255n)));
  assert.is(nonCanonical.length, 40);
  for (const enc of nonCanonical) {
    // noble's strict decoding agrees these are not canonical encodings.
    assert.throws(() => Point.fromBytes(enc, false), undefined, toHex(enc));
    assert.not.ok(precheck(withR(goodR), enc), `A = ${toHex(enc)}`);
    assert.not.ok(precheck(withR(enc), good.publicKey), `R = ${toHex(enc)}`);
    assert.not.ok(verify(withR(enc), utf8('m'), good.publicKey));
  }
  // Canonical neighbours pass the encoding checks (decodability is the library's
  // business). Not p - 1: (0, -1) is the point of order 2, blocked as small-order.
  for (const y of [P - 2n, P - 20n, 2n ** 255n - 2n ** 248n - 1n, 2n, 3n]) {
    assert.ok(precheck(withR(goodR), le32(y)), `y = p - ${P - y}`);
  }
});

test('S must be < L: S = L - 1 passes the pre-check, L, L + 1, 2^256 - 1 do not; S + L is rejected', () => {
  const kp = generateKeyPair();
  const r = fromHex(BASE_HEX);
  assert.ok(precheck(withR(r, 0n), kp.publicKey));
  assert.ok(precheck(withR(r, L - 1n), kp.publicKey));
  assert.not.ok(precheck(withR(r, L), kp.publicKey));
  assert.not.ok(precheck(withR(r, L + 1n), kp.publicKey));
  assert.not.ok(precheck(withR(r, 2n ** 253n), kp.publicKey));
  assert.not.ok(precheck(withR(r, 2n ** 256n - 1n), kp.publicKey));
  for (let i = 0; i < 50; i++) {
    const msg = rand(randInt(100));
    const sig = sign(kp, msg);
    assert.ok(verify(sig, msg, kp.publicKey));
    const s = bytesToNumberLE(sig.subarray(32));
    const malleated = cat(sig.subarray(0, 32), le32(s + L));
    assert.not.ok(verify(malleated, msg, kp.publicKey));
    assert.not.ok(verifyReference(malleated, msg, kp.publicKey));
  }
});

test('lengths: signature exactly 64 bytes, key exactly 32, bytes only; verify never throws', () => {
  const kp = generateKeyPair();
  const msg = utf8('m');
  const sig = sign(kp, msg);
  const cases: [unknown, unknown, unknown][] = [
    [sig.subarray(0, 63), msg, kp.publicKey],
    [cat(sig, Uint8Array.of(0)), msg, kp.publicKey],
    [sig, msg, kp.publicKey.subarray(0, 31)],
    [sig, msg, cat(kp.publicKey, Uint8Array.of(0))],
    [new Uint8Array(0), msg, kp.publicKey],
    [toHex(sig), msg, kp.publicKey],
    [sig, 'm', kp.publicKey],
    [sig, msg, toHex(kp.publicKey)],
    [null, null, null],
    [Array.from(sig), msg, kp.publicKey],
  ];
  for (const [s, m, k] of cases) {
    assert.is(verify(s as Uint8Array, m as Uint8Array, k as Uint8Array), false);
    assert.is(verifyReference(s as Uint8Array, m as Uint8Array, k as Uint8Array), false);
  }
  // A Buffer is a Uint8Array and works; so does a subarray view.
  assert.ok(verify(Buffer.from(sig), Buffer.from(msg), Buffer.from(kp.publicKey)));
  const padded = cat(Uint8Array.of(7), sig, Uint8Array.of(7));
  assert.ok(verify(padded.subarray(1, 65), msg, kp.publicKey));
});

test('32 bytes that are not a point (no square root) never verify', () => {
  const kp = generateKeyPair();
  const msg = utf8('m');
  const sig = sign(kp, msg);
  let tried = 0;
  for (let i = 0; tried < 20 && i < 10_000; i++) {
    const enc = rand(32);
    enc[31]! &= 0x7f;
    try {
      Point.fromBytes(enc, false);
      continue;
    } catch {
      tried++;
    }
    assert.not.ok(verify(sig, msg, enc));
    assert.not.ok(verifyReference(sig, msg, enc));
    assert.not.ok(verify(cat(enc, sig.subarray(32)), msg, kp.publicKey));
  }
  assert.is(tried, 20);
});

// --- cofactorless: mixed-order points --------------------------------------

/** k = SHA-512(R || A || M) mod L. */
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array) =>
  bytesToNumberLE(sha512(cat(r, a, m))) % L;

test('the rule is cofactorless: a mixed-order key A = aB + T verifies only when [k]T = 0', () => {
  const T = Point.fromHex(SMALL_ORDER_ENCODINGS[4]!); // order 8
  let accepted = 0;
  let rejected = 0;
  // Until both outcomes were seen a few times (P(8 | k) = 1/8 per try).
  for (let i = 0; i < 1000 && (accepted < 3 || rejected < 20); i++) {
    const a = (bytesToNumberLE(rand(32)) % (L - 1n)) + 1n;
    const r = (bytesToNumberLE(rand(32)) % (L - 1n)) + 1n;
    const A = Point.BASE.multiply(a).add(T).toBytes();
    const R = Point.BASE.multiply(r).toBytes();
    const msg = rand(16);
    const k = challenge(R, A, msg);
    const S = (r + k * a) % L;
    const sig = cat(R, le32(S));
    assert.ok(precheck(sig, A), 'a mixed-order key is not small-order');
    // The cofactored equation (noble, strict or not) holds for every such signature.
    assert.ok(ed25519.verify(sig, msg, A, { zip215: false }));
    const expected = k % 8n === 0n; // [k]T = 0 iff 8 | k for T of order 8
    assert.is(verify(sig, msg, A), expected, `k mod 8 = ${k % 8n}`);
    assert.is(verifyReference(sig, msg, A), expected, `k mod 8 = ${k % 8n}`);
    if (expected) accepted++;
    else rejected++;
  }
  assert.ok(accepted >= 3 && rejected >= 20, `accepted ${accepted}, rejected ${rejected}`);
});

test('the rule is cofactorless: a mixed-order R = rB + T never verifies', () => {
  const kp = generateKeyPair();
  const { scalar: a } = ed25519.utils.getExtendedPublicKey(kp.exportSeed());
  for (const hex of SMALL_ORDER_ENCODINGS.slice(1)) {
    const T = Point.fromHex(hex);
    const r = (bytesToNumberLE(rand(32)) % (L - 1n)) + 1n;
    const R = Point.BASE.multiply(r).add(T).toBytes();
    const msg = rand(16);
    const k = challenge(R, kp.publicKey, msg);
    const sig = cat(R, le32((r + k * a) % L));
    assert.ok(precheck(sig, kp.publicKey));
    assert.ok(ed25519.verify(sig, msg, kp.publicKey, { zip215: false }), 'cofactored accepts');
    assert.not.ok(verify(sig, msg, kp.publicKey), hex);
    assert.not.ok(verifyReference(sig, msg, kp.publicKey), hex);
  }
});

// --- differential ----------------------------------------------------------

test(`differential: ${DIFF_N} random keys and messages, both verifiers accept`, () => {
  for (let i = 0; i < DIFF_N; i++) {
    const kp = keyPairFromSeed(rand(32));
    const msg = rand(randInt(256));
    const sig = sign(kp, msg);
    const ctx = `seed ${RUN_SEED} #${i}`;
    assert.equal(sig, ed25519.sign(msg, kp.exportSeed()), `${ctx}: noble signs the same`);
    assert.ok(verify(sig, msg, kp.publicKey), ctx);
    assert.ok(verifyReference(sig, msg, kp.publicKey), ctx);
  }
}, 120_000);

function mutations(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array, other: Uint8Array) {
  const flip = (b: Uint8Array, bit: number) => {
    const c = Uint8Array.from(b);
    c[bit >> 3]! ^= 1 << (bit & 7);
    return c;
  };
  const s = bytesToNumberLE(sig.subarray(32));
  const out: [string, Uint8Array, Uint8Array, Uint8Array][] = [
    ['flip bit in R', flip(sig, randInt(256)), msg, pub],
    ['flip bit in S', flip(sig, 256 + randInt(256)), msg, pub],
    ['flip sign bit of R', flip(sig, 255), msg, pub],
    ['flip top bit of S', flip(sig, 511), msg, pub],
    ['flip bit in key', sig, msg, flip(pub, randInt(256))],
    ['flip sign bit of key', sig, msg, flip(pub, 255)],
    ['S + L', cat(sig.subarray(0, 32), le32(s + L)), msg, pub],
    ['truncated signature', sig.subarray(0, 63), msg, pub],
    ['truncated key', sig, msg, pub.subarray(0, 31)],
    ['extended message', sig, cat(msg, Uint8Array.of(0)), pub],
    ['other key', sig, msg, other],
    ['small-order R', cat(fromHex(SMALL_ORDER_ENCODINGS[randInt(8)]!), sig.subarray(32)), msg, pub],
    ['zero S', cat(sig.subarray(0, 32), new Uint8Array(32)), msg, pub],
  ];
  if (msg.length > 0)
    out.push(['flip bit in message', sig, flip(msg, randInt(msg.length * 8)), pub]);
  return out;
}

test(`differential: mutated signatures, messages and keys, both verifiers reject`, () => {
  const n = Math.max(1, Math.round(DIFF_N / 4));
  let checked = 0;
  let other = generateKeyPair().publicKey;
  for (let i = 0; i < n; i++) {
    const kp = keyPairFromSeed(rand(32));
    const msg = rand(randInt(128));
    const sig = sign(kp, msg);
    for (const [what, s, m, k] of mutations(sig, msg, kp.publicKey, other)) {
      const a = verify(s, m, k);
      const b = verifyReference(s, m, k);
      const ctx = `seed ${RUN_SEED} #${i} ${what}`;
      assert.is(a, b, `${ctx}: verify ${a}, reference ${b}`);
      assert.is(a, false, ctx);
      checked++;
    }
    other = kp.publicKey;
  }
  assert.ok(checked >= n * 13);
}, 180_000);

test('differential: random 64/32-byte garbage, both verifiers agree (reject)', () => {
  for (let i = 0; i < 2000; i++) {
    const sig = rand(64);
    if (i % 2 === 0) sig[63]! &= 0x0f; // half with S < 2^252, past the S check
    const pub = rand(32);
    const a = verify(sig, utf8('m'), pub);
    const b = verifyReference(sig, utf8('m'), pub);
    assert.is(a, b, `seed ${RUN_SEED} #${i}`);
    assert.is(a, false, `seed ${RUN_SEED} #${i}`);
  }
});

// --- keys and signing ------------------------------------------------------

test('sign accepts a KeyPair, its private KeyObject or the seed; all give the same bytes', () => {
  const seed = rand(32);
  const kp = keyPairFromSeed(seed);
  const msg = utf8('hello');
  const a = sign(kp, msg);
  assert.is(a.length, 64);
  assert.is(a.constructor, Uint8Array);
  assert.equal(sign(kp.privateKey, msg), a);
  assert.equal(sign(seed, msg), a);
  assert.equal(sign(kp.exportSeed(), msg), a);
  assert.ok(verify(a, msg, kp.publicKey));
});

test(`differential: ${DIFF_N} random keys and messages, libsodium and node:crypto sign the same bytes`, () => {
  // The hot path signs with libsodium; this machine has the addon, so a
  // silent fallback to node:crypto would make the comparison below vacuous.
  assert.is(signingBackend(), 'libsodium');
  for (let i = 0; i < DIFF_N; i++) {
    const kp = keyPairFromSeed(rand(32));
    const msg = rand(i % 300);
    const fast = sign(kp, msg);
    assert.equal(fast, sign(kp.privateKey, msg), `seed ${RUN_SEED} #${i}`);
    assert.ok(verify(fast, msg, kp.publicKey), `seed ${RUN_SEED} #${i}`);
  }
  // A view into a larger buffer signs its own bytes only.
  const kp = generateKeyPair();
  const big = rand(64);
  assert.equal(sign(kp, big.subarray(8, 40)), sign(kp.privateKey, big.slice(8, 40)));
});

test('sign refuses public keys, other key types and wrong seed lengths (ERR_BAD_KEY)', () => {
  const kp = generateKeyPair();
  const pubObj = createPublicKey(kp.privateKey);
  const rsa = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  for (const bad of [pubObj, rsa, new Uint8Array(31), new Uint8Array(64), 'seed', null]) {
    assert.throws(
      () => sign(bad as Uint8Array, utf8('m')),
      (e: { code?: string }) => e.code === 'ERR_BAD_KEY',
    );
  }
  for (const bad of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32)]) {
    assert.throws(
      () => keyPairFromSeed(bad as Uint8Array),
      (e: { code?: string }) => e.code === 'ERR_BAD_KEY',
    );
  }
});

test('keyPairFromSeed copies the seed; exportSeed returns a copy', () => {
  const seed = rand(32);
  const copy = Uint8Array.from(seed);
  const kp = keyPairFromSeed(seed);
  seed.fill(0);
  assert.equal(kp.exportSeed(), copy);
  kp.exportSeed().fill(1);
  assert.equal(kp.exportSeed(), copy);
  assert.equal(kp.publicKey, ed25519.getPublicKey(copy));
});

test('generateKeyPair gives distinct keys that sign and verify', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const kp = generateKeyPair();
    seen.add(toHex(kp.publicKey));
    const msg = rand(10);
    assert.ok(verify(sign(kp, msg), msg, kp.publicKey));
  }
  assert.is(seen.size, 50);
});

test('a KeyPair never shows its seed when logged, inspected, stringified or cloned', () => {
  const kp = generateKeyPair();
  const seed = kp.exportSeed();
  const secrets = [
    toHex(seed),
    Buffer.from(seed).toString('base64'),
    Buffer.from(seed).toString('base64url'),
  ];
  const shown = [
    JSON.stringify(kp),
    JSON.stringify({ key: kp }),
    inspect(kp, { showHidden: true, depth: 10 }),
    inspect({ kp }, { showHidden: true, depth: 10 }),
    String(kp),
    JSON.stringify(structuredClone(kp)),
    inspect(structuredClone(kp), { depth: 10 }),
    Object.keys(kp).join(','),
  ];
  for (const s of shown) {
    for (const secret of secrets) assert.not.ok(s.includes(secret), s);
    assert.not.ok(s.includes(Array.from(seed).join(',')), s);
  }
  assert.ok(JSON.stringify(kp).includes(kp.did));
});

test('the public KeyObject cache is bounded', () => {
  try {
    setPublicKeyCacheSize(3);
    const keys = Array.from({ length: 6 }, () => generateKeyPair());
    for (const kp of keys) {
      const msg = utf8('m');
      assert.ok(verify(sign(kp, msg), msg, kp.publicKey));
    }
    assert.is(publicKeyCacheEntries(), 3);
    // Cached keys still verify correctly (and a hit does not grow the cache).
    const last = keys[5]!;
    assert.ok(verify(sign(last, utf8('again')), utf8('again'), last.publicKey));
    assert.not.ok(verify(sign(last, utf8('again')), utf8('again'), keys[4]!.publicKey));
    assert.is(publicKeyCacheEntries(), 3);
    setPublicKeyCacheSize(0);
    assert.is(publicKeyCacheEntries(), 0);
    assert.ok(verify(sign(last, utf8('x')), utf8('x'), last.publicKey));
    assert.is(publicKeyCacheEntries(), 0);
  } finally {
    setPublicKeyCacheSize(4096);
  }
});

test.run();
