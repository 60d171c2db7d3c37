/**
 * The entry codec, format v1: the bytes that are signed, stored, hashed and
 * gossiped. Besides the rules themselves, a committed fixture
 * (test/fixtures/journal/entries-v1.json) pins the exact bytes, ids and
 * signatures: a codec change that alters any of them breaks this file.
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import {
  ENTRY_VERSION,
  MAX_ENTRY_BYTES,
  decodeEntry,
  encodeEntry,
  entryId,
  sigFromString,
  sigToString,
  signedCanonical,
  signingBytes,
  unsignedCanonical,
} from '../../../runtime/domain/codec.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import { checkEntry, signatureValid } from '../../../actors/journal/validate.js';
import {
  canonicalize,
  keyPairFromSeed,
  publicKeyFromDid,
  sign,
} from '../../../runtime/crypto/index.js';
import {
  FIXTURE_PATH,
  buildEntriesV1,
  type EntriesFixture,
} from '../../fixtures/journal/generate-entries-v1.js';
import { Feed, T0, bodies, clone, keyOf, signWith } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('journal/codec');

const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** Sorted-key JSON of plain JSON data: RFC 8785 for strings, safe integers, booleans, null. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Ed25519 verification straight through node:crypto, independent of runtime/crypto. */
function nodeCryptoVerifies(entry: Entry): boolean {
  const pub = publicKeyFromDid(entry.author);
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub).toString('base64url') },
    format: 'jwk',
  });
  return nodeVerify(null, signingBytes(entry), key, Buffer.from(entry.sig, 'base64url'));
}

function withoutSig(e: Entry): Omit<Entry, 'sig'> {
  const copy: Partial<Entry> = { ...e };
  delete copy.sig;
  return copy as Omit<Entry, 'sig'>;
}

function sample(): Entry {
  const feed = new Feed(keyOf(1));
  feed.push('node', bodies.node(1));
  return feed.make('offer', bodies.offer('web', 8080, 'auto'));
}

test('signing bytes are the canonical JSON of the entry without sig: sorted keys, no whitespace', () => {
  const e = sample();
  const text = utf8(signingBytes(e));
  const unsigned = withoutSig(e);
  assert.is(text, sortedJson(unsigned));
  assert.ok(text.startsWith('{"author":"did:key:z6Mk'), text);
  assert.not.match(text, /"sig"/);
  assert.not.match(text, /\s/);
  assert.match(text, /"body":\{"leaseSeconds":3600,"mode":"auto","port":8080,/);
});

test('signing bytes exclude sig: any sig (or none) gives the same bytes', () => {
  const e = sample();
  const unsigned = withoutSig(e);
  const other = { ...e, sig: sigToString(new Uint8Array(64).fill(9)) };
  assert.equal(signingBytes(e), signingBytes(other));
  assert.equal(signingBytes(e), signingBytes(unsigned));
});

test('signing bytes ignore fields outside the format (they cannot ride along under a signature)', () => {
  const e = sample();
  const extra = { ...e, note: 'not signed' } as unknown as Entry;
  assert.equal(signingBytes(extra), signingBytes(e));
});

test('stored bytes are the canonical JSON of the whole entry, sig included', () => {
  const e = sample();
  const text = utf8(encodeEntry(e));
  assert.is(text, sortedJson(e));
  assert.match(text, new RegExp(`"sig":"${e.sig}","ts":`));
});

test('encoding does not depend on the order in which the fields were set', () => {
  const e = sample();
  const reversed = Object.fromEntries(
    Object.entries(e)
      .reverse()
      .map(([k, v]) =>
        k === 'body'
          ? [k, Object.fromEntries(Object.entries(v as object).reverse())]
          : [k, v as unknown],
      ),
  ) as unknown as Entry;
  assert.not.equal(Object.keys(reversed), Object.keys(e));
  assert.equal(encodeEntry(reversed), encodeEntry(e));
  assert.equal(signingBytes(reversed), signingBytes(e));
});

test('non-ASCII text is written as raw UTF-8, not \\u escapes', () => {
  const feed = new Feed(keyOf(2));
  const e = feed.make('node', {
    name: 'n',
    gossip: 'wss://ü.example/🦀',
    meshIp: '10.0.0.1',
  });
  const b = encodeEntry(e);
  assert.ok(utf8(b).includes('wss://ü.example/🦀'));
  assert.not.match(utf8(b), /\\u/);
  // ü is 2 bytes, the crab 4: the byte count is the UTF-8 one.
  assert.is(b.length, Buffer.byteLength(utf8(b), 'utf8'));
});

test('decode(encode(e)) gives e back', () => {
  const e = sample();
  assert.equal(decodeEntry(encodeEntry(e)), e);
});

test('decoding refuses bytes that are not UTF-8', () => {
  const b = encodeEntry(sample());
  const bad = new Uint8Array([...b.subarray(0, 20), 0xff, ...b.subarray(20)]);
  assert.throws(() => decodeEntry(bad));
});

test('the id is BLAKE2b-256 of the stored bytes: known vectors and lower-case hex', () => {
  assert.is(
    entryId(new Uint8Array()),
    '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8',
  );
  assert.is(
    entryId(bytes('abc')),
    'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319',
  );
  assert.match(entryId(encodeEntry(sample())), /^[0-9a-f]{64}$/);
});

test('the id covers sig: same signed content, other sig → other id', () => {
  const e = sample();
  const other = { ...e, sig: sigToString(new Uint8Array(64).fill(9)) };
  assert.equal(signingBytes(e), signingBytes(other));
  assert.is.not(entryId(encodeEntry(e)), entryId(encodeEntry(other)));
});

test('a signed entry verifies under its author, by our rule and by plain node:crypto', () => {
  const e = sample();
  assert.ok(signatureValid(e));
  assert.ok(nodeCryptoVerifies(e));
});

test('sig: 64 bytes ↔ 86 unpadded base64url characters, both ways', () => {
  for (let i = 0; i < 64; i++) {
    const sig = Uint8Array.from({ length: 64 }, (_, j) => (j * 37 + i * 11) & 0xff);
    sig[0] = i * 4; // exercise '-' and '_' (62, 63) and the rest of the alphabet
    const s = sigToString(sig);
    assert.is(s.length, 86);
    assert.match(s, /^[A-Za-z0-9_-]{86}$/);
    assert.equal(sigFromString(s), sig);
  }
  const all = new Uint8Array(64).fill(0xff);
  assert.is(sigToString(all), '_'.repeat(85) + 'w');
  const fb = new Uint8Array(64).fill(0xfb);
  assert.ok(sigToString(fb).includes('-'));
});

test('sigToString encodes only the view it is given, not the rest of its buffer', () => {
  const big = new Uint8Array(200).fill(0xaa);
  const view = big.subarray(50, 114);
  view.fill(7);
  const s = sigToString(view);
  assert.equal(sigFromString(s), new Uint8Array(64).fill(7));
});

test('a real signature survives string form: sign → string → bytes → verify', () => {
  const key = keyOf(3);
  const msg = bytes('meshnode');
  const sig = sign(key, msg);
  const back = sigFromString(sigToString(sig));
  assert.equal(back, sig);
  const e = signWith(key, {
    v: 1,
    author: key.did,
    seq: 1,
    prev: null,
    ts: T0,
    kind: 'node',
    body: bodies.node(3),
  });
  assert.ok(signatureValid(clone(e)));
});

test('the append path’s templated canonical JSON equals RFC 8785 canonicalization', () => {
  const key = keyOf(4);
  const awkward = [
    bodies.node(1),
    { name: 'q', gossip: 'ws://x/"quoted"\\back,"ts":1,"sig":"x"', meshIp: '10.0.0.1' },
    { name: 'u', gossip: 'wss://ü.example/🦀\u2028', meshIp: 'fd00::1' },
  ];
  const feed = new Feed(key);
  for (const body of awkward) {
    const e = feed.push('node', body);
    const { sig, ...unsigned } = e;
    const json = unsignedCanonical(unsigned, canonicalize(body));
    assert.is(json, canonicalize(unsigned));
    assert.is(signedCanonical(json, sig), utf8(encodeEntry(e)));
  }
});

test('format constants: v1, 16 KiB per entry', () => {
  assert.is(ENTRY_VERSION, 1);
  assert.is(MAX_ENTRY_BYTES, 16 * 1024);
});

// ---------------------------------------------------------------------------
// The committed fixture

const fixture = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as EntriesFixture;

test('fixture: the seeds give the stored DIDs', () => {
  for (const name of ['alpha', 'beta']) {
    const key = keyPairFromSeed(Uint8Array.from(Buffer.from(fixture.seeds[name]!, 'hex')));
    assert.is(key.did, fixture.dids[name]);
  }
  assert.ok(fixture.entries.length >= 7);
  const kinds = new Set(fixture.entries.map((f) => f.entry.kind));
  assert.equal([...kinds].sort(), [
    'approve',
    'grant',
    'node',
    'offer',
    'revoke',
    'subscribe',
    'ungrant',
  ]);
});

test('fixture: re-encoding every stored entry gives the stored bytes, signing bytes and id', () => {
  for (const f of fixture.entries) {
    const where = `${f.entry.kind} #${f.entry.seq}`;
    assert.is(utf8(encodeEntry(f.entry)), f.canonical, where);
    assert.is(utf8(signingBytes(f.entry)), f.signing, where);
    assert.is(entryId(bytes(f.canonical)), f.id, where);
    assert.is(entryId(encodeEntry(f.entry)), f.id, where);
    assert.equal(decodeEntry(bytes(f.canonical)), f.entry, where);
  }
});

test('fixture: every stored signature verifies, by our rule and by plain node:crypto', () => {
  for (const f of fixture.entries) {
    const where = `${f.entry.kind} #${f.entry.seq}`;
    assert.ok(signatureValid(f.entry), where);
    assert.ok(nodeCryptoVerifies(f.entry), where);
    assert.is(sigToString(sigFromString(f.entry.sig)), f.entry.sig, where);
  }
});

test('fixture: the append path’s templates rebuild the stored signing bytes and bytes', () => {
  for (const f of fixture.entries) {
    const { sig, ...unsigned } = f.entry;
    const json = unsignedCanonical(unsigned, canonicalize(f.entry.body));
    assert.is(json, f.signing);
    assert.is(signedCanonical(json, sig), f.canonical);
  }
});

test('fixture: every entry passes validation and the feeds chain by stored ids', () => {
  const heads = new Map<string, { seq: number; id: string }>();
  for (const f of fixture.entries) {
    const c = checkEntry(f.entry);
    assert.is(c.id, f.id);
    const head = heads.get(f.entry.author);
    assert.is(f.entry.seq, (head?.seq ?? 0) + 1);
    assert.is(f.entry.prev, head?.id ?? null);
    heads.set(f.entry.author, { seq: f.entry.seq, id: f.id });
  }
});

test('fixture: signing again from the seeds reproduces the file exactly (Ed25519 is deterministic)', () => {
  assert.equal(buildEntriesV1(), fixture);
});

test.run();
