/**
 * Everything the journal checks about one entry on its own, one rejection
 * code at a time, each with the exact input tried (the assertion message
 * names it). Feed checks (gaps, links, equivocation) are feed.test.ts.
 */
import * as assert from 'uvu/assert';
import { MAX_ENTRY_BYTES, encodeEntry, sigToString } from '../../../runtime/domain/codec.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import {
  badSignature,
  checkBody,
  checkEntry,
  sealEntry,
  signatureValid,
  signatureValidBytes,
  signatureTips,
} from '../../../actors/journal/validate.js';
import { ENTRY_KINDS } from '../../../runtime/domain/entries.js';
import { Feed, T0, bodies, clone, fakeId, keyOf, signWith } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('journal/validate');

const alice = keyOf(1);
const bob = keyOf(2);

/** A valid, signed entry at seq 1 (prev null) and one at seq 2 (prev = id of 1). */
function entries(): { first: Entry; second: Entry } {
  const feed = new Feed(alice);
  const first = feed.push('node', bodies.node(1));
  const second = feed.push('offer', bodies.offer());
  return { first, second };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `no code: ${String(err)}`;
  }
  return 'accepted';
}

/** Each case: [label, input]; every one must be refused with `code`. */
function refuses(code: string, cases: Array<[string, unknown]>): void {
  for (const [label, input] of cases) {
    assert.is(
      codeOf(() => checkEntry(input)),
      code,
      `${label}: ${JSON.stringify(input)?.slice(0, 300)}`,
    );
  }
}

const without = (e: Entry, field: string) => {
  const copy = clone(e) as unknown as Record<string, unknown>;
  delete copy[field];
  return copy;
};
const withField = (e: Entry, field: string, value: unknown) => ({ ...clone(e), [field]: value });
const withBody = (e: Entry, body: unknown) => ({ ...clone(e), body });

test('valid entries pass and come back with their canonical bytes and id', () => {
  const { first, second } = entries();
  for (const e of [first, second]) {
    const c = checkEntry(clone(e));
    assert.equal(c.bytes, encodeEntry(e));
    assert.match(c.id, /^[0-9a-f]{64}$/);
    assert.ok(signatureValid(c.entry));
  }
});

test('ERR_MALFORMED_ENTRY: not an object', () => {
  refuses('ERR_MALFORMED_ENTRY', [
    ['null', null],
    ['undefined', undefined],
    ['string', 'entry'],
    ['number', 1],
    ['array', [entries().first]],
  ]);
});

test('ERR_MALFORMED_ENTRY: a missing or an extra field', () => {
  const { first } = entries();
  const cases: Array<[string, unknown]> = [];
  for (const f of ['v', 'author', 'seq', 'prev', 'ts', 'kind', 'body', 'sig']) {
    cases.push([`missing ${f}`, without(first, f)]);
  }
  cases.push(['extra field', withField(first, 'extra', 1)]);
  cases.push(['extra id field', withField(first, 'id', fakeId(1))]);
  cases.push(['field undefined', withField(first, 'extra', undefined)]);
  refuses('ERR_MALFORMED_ENTRY', cases);
});

test('ERR_MALFORMED_ENTRY: wrong version', () => {
  const { first } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['v 2', withField(first, 'v', 2)],
    ['v 0', withField(first, 'v', 0)],
    ['v "1"', withField(first, 'v', '1')],
  ]);
});

test('ERR_MALFORMED_ENTRY: seq not a positive safe integer', () => {
  const { first, second } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['seq 0', withField(first, 'seq', 0)],
    ['seq -1', withField(first, 'seq', -1)],
    ['seq 1.5', withField(second, 'seq', 1.5)],
    ['seq "2"', withField(second, 'seq', '2')],
    ['seq 2^53', withField(second, 'seq', 2 ** 53)],
  ]);
});

test('ERR_MALFORMED_ENTRY: prev must be null exactly at seq 1, else a lower-case hex id', () => {
  const { first, second } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['prev non-null at seq 1', withField(first, 'prev', fakeId(1))],
    ['null prev at seq 2', withField(second, 'prev', null)],
    ['upper-case prev', withField(second, 'prev', second.prev!.toUpperCase())],
    ['short prev', withField(second, 'prev', second.prev!.slice(1))],
    ['prev missing at seq 2 (empty string)', withField(second, 'prev', '')],
  ]);
});

test('ERR_MALFORMED_ENTRY: ts not a non-negative safe integer', () => {
  const { first } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['ts -1', withField(first, 'ts', -1)],
    ['ts float', withField(first, 'ts', T0 + 0.5)],
    ['ts string', withField(first, 'ts', String(T0))],
  ]);
});

test('ERR_MALFORMED_ENTRY: a sig that is not 86 base64url characters', () => {
  const { first } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['sig empty', withField(first, 'sig', '')],
    ['sig one short', withField(first, 'sig', first.sig.slice(1))],
    ['sig padded', withField(first, 'sig', first.sig + '==')],
    ['sig base64 (+/)', withField(first, 'sig', '+/' + first.sig.slice(2))],
    ['sig hex of 64 bytes', withField(first, 'sig', 'ab'.repeat(64))],
    ['sig bytes, not a string', withField(first, 'sig', Array.from(new Uint8Array(64)))],
  ]);
});

test('ERR_MALFORMED_ENTRY: author not a string', () => {
  const { first } = entries();
  refuses('ERR_MALFORMED_ENTRY', [
    ['author number', withField(first, 'author', 1)],
    ['author null', withField(first, 'author', null)],
  ]);
});

test('ERR_BAD_DID: an author that is not an Ed25519 did:key', () => {
  const { first } = entries();
  const tail = first.author.slice('did:key:z'.length);
  refuses('ERR_BAD_DID', [
    ['did:web', withField(first, 'author', 'did:web:example.com')],
    ['no did prefix', withField(first, 'author', tail)],
    ['not base58btc (multibase u)', withField(first, 'author', `did:key:u${tail}`)],
    ['one char short', withField(first, 'author', first.author.slice(0, -1))],
    ['not base58 (0 O I l)', withField(first, 'author', `did:key:z${'0OIl'}${tail.slice(4)}`)],
    [
      'secp256k1 did:key',
      withField(first, 'author', 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'),
    ],
    ['fragment', withField(first, 'author', `${first.author}#key-1`)],
  ]);
});

test('ERR_UNKNOWN_KIND: a kind outside ENTRY_KINDS, including Object.prototype names', () => {
  const { first } = entries();
  refuses('ERR_UNKNOWN_KIND', [
    ['post', withField(first, 'kind', 'post')],
    ['Node (case)', withField(first, 'kind', 'Node')],
    ['__proto__', withField(first, 'kind', '__proto__')],
    ['toString', withField(first, 'kind', 'toString')],
    ['constructor', withField(first, 'kind', 'constructor')],
    ['number', withField(first, 'kind', 1)],
    ['null', withField(first, 'kind', null)],
  ]);
  assert.equal([...ENTRY_KINDS].sort(), [
    'approve',
    'grant',
    'member',
    'member-revoke',
    'mesh',
    'node',
    'offer',
    'revoke',
    'subscribe',
    'ungrant',
  ]);
});

test('ERR_SCHEMA: a body that is not journal data (float, undefined, non-plain object)', () => {
  const { first, second } = entries();
  refuses('ERR_SCHEMA', [
    ['float port', withBody(second, { ...second.body, port: 443.5 })],
    ['float lease', withBody(second, { ...second.body, leaseSeconds: 1e-3 })],
    ['NaN port', withBody(second, { ...second.body, port: NaN })],
    ['undefined field', withBody(first, { ...first.body, extra: undefined })],
    ['Date in body', withBody(first, { ...first.body, name: new Date(0) })],
    ['body null', withBody(first, null)],
    ['body array', withBody(first, [first.body])],
    ['body string', withBody(first, 'node')],
  ]);
});

test('ERR_SCHEMA: a body that breaks its kind’s schema', () => {
  const { first, second } = entries();
  const offer = second.body;
  const node = first.body;
  refuses('ERR_SCHEMA', [
    ['unknown body field', withBody(first, { ...node, secret: 'x' })],
    ['missing body field', withBody(first, { name: node.name, gossip: node.gossip })],
    ['port 0', withBody(second, { ...offer, port: 0 })],
    ['port 65536', withBody(second, { ...offer, port: 65536 })],
    ['port string', withBody(second, { ...offer, port: '443' })],
    ['proto sctp', withBody(second, { ...offer, proto: 'sctp' })],
    ['mode sometimes', withBody(second, { ...offer, mode: 'sometimes' })],
    ['lease 31 days', withBody(second, { ...offer, leaseSeconds: 31 * 24 * 3600 })],
    ['service upper-case', withBody(second, { ...offer, service: 'Web' })],
    ['IP 10.0.0.256', withBody(first, { ...node, meshIp: '10.0.0.256' })],
    ['IP hostname', withBody(first, { ...node, meshIp: 'mesh.example' })],
    ['IP CIDR', withBody(first, { ...node, meshIp: '10.0.0.0/8' })],
    ['IPv6 bad group', withBody(first, { ...node, meshIp: 'fd00::g' })],
    ['gossip http', withBody(first, { ...node, gossip: 'http://10.0.0.1:7000' })],
    ['gossip with space', withBody(first, { ...node, gossip: 'ws://a b' })],
    ['subscribe to a non-did', withBody(second, { provider: 'bob', service: 'web' })],
    ['approve a non-id', withBody(second, { subscription: 'xyz' })],
    ['revoke nothing', withBody(second, {})],
  ]);
});

test('ERR_SCHEMA: every kind has a schema that refuses an empty body', () => {
  const { first } = entries();
  for (const kind of ENTRY_KINDS) {
    assert.is(
      codeOf(() => checkEntry({ ...clone(first), kind, body: {} })),
      'ERR_SCHEMA',
      kind,
    );
    assert.is(
      codeOf(() => checkBody(kind, {})),
      'ERR_SCHEMA',
      kind,
    );
  }
});

test('checkBody: every kind accepts its helper body', () => {
  const sub = fakeId(7);
  const good: Array<[string, unknown]> = [
    ['node', bodies.node(1)],
    ['offer', bodies.offer()],
    ['subscribe', bodies.subscribe(bob.did)],
    ['approve', bodies.approve(sub)],
    ['revoke', bodies.revoke(sub)],
    ['grant', bodies.grant(sub, bob.did)],
    ['ungrant', bodies.ungrant(sub, bob.did)],
  ];
  for (const [kind, body] of good) checkBody(kind, body);
});

/** A node entry whose canonical form is exactly `size` bytes (padding an IPv6 zone id). */
function nodeOfSize(size: number): Entry {
  const base = (zone: string) =>
    signWith(alice, {
      v: 1,
      author: alice.did,
      seq: 1,
      prev: null,
      ts: T0,
      kind: 'node',
      body: { name: 'big', gossip: 'ws://10.0.0.1:7000', meshIp: `fe80::1%${zone}` },
    });
  const overhead = encodeEntry(base('')).length;
  return base('z'.repeat(size - overhead));
}

test('ERR_TOO_LARGE: an entry one byte over MAX_ENTRY_BYTES; exactly the limit passes', () => {
  const atLimit = nodeOfSize(MAX_ENTRY_BYTES);
  assert.is(encodeEntry(atLimit).length, MAX_ENTRY_BYTES);
  // At the limit the codec accepts it (its zone-id IP fails the schema, which is checkEntry's business).
  assert.is(sealEntry(atLimit).bytes.length, MAX_ENTRY_BYTES);
  const over = nodeOfSize(MAX_ENTRY_BYTES + 1);
  assert.is(
    codeOf(() => checkEntry(over)),
    'ERR_TOO_LARGE',
    'node entry of 16385 bytes',
  );
  assert.is(
    codeOf(() => sealEntry(over)),
    'ERR_TOO_LARGE',
  );
});

test('ERR_TOO_LARGE is about bytes, not characters (multi-byte UTF-8 counts in full)', () => {
  const e = signWith(alice, {
    v: 1,
    author: alice.did,
    seq: 1,
    prev: null,
    ts: T0,
    kind: 'node',
    // 4500 crabs: 9000 UTF-16 units (under the limit), 18000 UTF-8 bytes (over it)
    body: { name: 'big', gossip: `ws://x/${'🦀'.repeat(4500)}`, meshIp: '10.0.0.1' },
  });
  assert.ok(JSON.stringify(e).length < MAX_ENTRY_BYTES);
  // The schema caps gossip at 256 characters, so seal it directly: the size rule is the codec's.
  assert.is(
    codeOf(() => sealEntry(e)),
    'ERR_TOO_LARGE',
  );
});

test('ERR_BAD_SIGNATURE: a bit flipped in the body after signing', () => {
  const { second } = entries();
  const tampered = withBody(second, { ...second.body, port: (second.body.port as number) ^ 1 });
  const c = checkEntry(tampered); // structurally fine: only the signature tells
  assert.not.ok(signatureValid(c.entry), 'port 443 → 442 after signing');
  const otherTs = withField(second, 'ts', second.ts + 1);
  assert.not.ok(signatureValid(checkEntry(otherTs).entry), 'ts + 1 after signing');
  const otherSeqPrev = { ...clone(second), seq: 3 };
  assert.not.ok(signatureValid(checkEntry(otherSeqPrev).entry), 'seq 2 → 3 after signing');
  assert.is(badSignature('entries[0]').code, 'ERR_BAD_SIGNATURE');
});

test('ERR_BAD_SIGNATURE: a bit flipped in the signature', () => {
  const { first } = entries();
  const sig = Buffer.from(first.sig, 'base64url');
  for (const bit of [0, 7, 255, 256, 511]) {
    const flipped = Uint8Array.from(sig);
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    const e = withField(first, 'sig', sigToString(flipped)) as Entry;
    assert.not.ok(signatureValid(checkEntry(e).entry), `sig bit ${bit} flipped`);
  }
  const zeros = withField(first, 'sig', sigToString(new Uint8Array(64))) as Entry;
  assert.not.ok(signatureValid(checkEntry(zeros).entry), 'all-zero sig');
});

test('ERR_BAD_SIGNATURE: signed by another key than the author’s ("wrong key for DID")', () => {
  // With did:key the DID is the key: an entry claiming alice but signed by bob.
  const forged = signWith(bob, {
    v: 1,
    author: alice.did,
    seq: 1,
    prev: null,
    ts: T0,
    kind: 'node',
    body: bodies.node(1),
  });
  const c = checkEntry(forged);
  assert.not.ok(signatureValid(c.entry));
  // The same content signed by alice is fine: only the key was wrong.
  const real = signWith(alice, { ...forged });
  assert.ok(signatureValid(checkEntry(real).entry));
});

test('signatureValidBytes (from the stored bytes) agrees with signatureValid', () => {
  const f = new Feed(alice);
  const made: Entry[] = [
    f.push('node', bodies.node(1)),
    f.push('offer', bodies.offer()),
    f.push('node', { ...bodies.node(3), gossip: 'wss://nœud.example/ü' }), // multi-byte UTF-8
  ];
  const { second } = entries();
  const forged = signWith(bob, { ...clone(made[0]!), sig: undefined } as never);
  const cases: Array<[string, unknown]> = [
    ...made.map((e, i): [string, unknown] => [`valid ${i}`, e]),
    ['body changed', withBody(second, { ...second.body, port: 442 })],
    ['ts + 1', withField(second, 'ts', second.ts + 1)],
    ['signed by another key', forged],
  ];
  for (const [label, input] of cases) {
    const c = checkEntry(input);
    assert.is(signatureValidBytes(c.entry, c.bytes), signatureValid(c.entry), label);
  }
  assert.ok(signatureValidBytes(checkEntry(made[2]).entry, checkEntry(made[2]).bytes));
  // Bytes that are not that entry's canonical form fail; they never pass.
  const c = checkEntry(made[0]);
  assert.not.ok(signatureValidBytes(c.entry, checkEntry(made[1]).bytes), 'another entry’s bytes');
  assert.not.ok(signatureValidBytes(c.entry, c.bytes.subarray(1)), 'bytes cut short');
  assert.not.ok(signatureValidBytes(c.entry, new Uint8Array(10)), 'too short to hold a sig');
});

test('one signature has one string: a sig with its unused trailing bits set is refused', () => {
  // 86 base64url characters carry 516 bits for 64 bytes; the last 4 must be
  // zero. Otherwise one signature has 16 spellings, each a different entry id
  // with a valid signature: anyone relaying an entry could mint a "second
  // entry" for the same (author, seq) and get the author's feed stopped as an
  // equivocation.
  const { first } = entries();
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = ALPHABET.indexOf(first.sig.at(-1)!);
  assert.is(last & 0b1111, 0, 'our own encoder writes zero trailing bits');
  const twinSig = first.sig.slice(0, -1) + ALPHABET[last | 1];
  const twin = withField(first, 'sig', twinSig) as Entry;
  const code = codeOf(() => {
    const c = checkEntry(twin);
    if (!signatureValid(c.entry)) throw badSignature('twin');
  });
  assert.ok(
    code === 'ERR_MALFORMED_ENTRY' || code === 'ERR_BAD_SIGNATURE',
    `a re-spelled sig (${first.sig.at(-1)} → ${twinSig.at(-1)}) was ${code}`,
  );
});

test('checks run cheapest first: a malformed entry with a bad DID and a bad body is MALFORMED', () => {
  const { first } = entries();
  const e = { ...clone(first), v: 2, author: 'did:web:x', kind: 'post', body: { x: 1.5 } };
  assert.is(
    codeOf(() => checkEntry(e)),
    'ERR_MALFORMED_ENTRY',
  );
  const e2 = { ...clone(first), author: 'did:web:x', kind: 'post' };
  assert.is(
    codeOf(() => checkEntry(e2)),
    'ERR_BAD_DID',
  );
  const e3 = { ...clone(first), kind: 'post', body: { x: 1.5 } };
  assert.is(
    codeOf(() => checkEntry(e3)),
    'ERR_UNKNOWN_KIND',
  );
});

test('signatureTips: per author the highest seq is checked; the rest ride on it; junk is always checked', () => {
  const a = new Feed(keyOf(1));
  const b = new Feed(keyOf(2));
  a.fill(3);
  b.fill(2);
  // a#1 b#1 a#2 junk b#2 a#3, then a second a#2 (an equivocation attempt, lower seq).
  const batch: unknown[] = [a.at(1), b.at(1), a.at(2), 'junk', b.at(2), a.at(3), a.at(2)];
  assert.equal([...signatureTips(batch)], [0, 0, 0, 1, 1, 1, 0]);
  // Equal seqs: the later one is the tip (planBatch checks the other one if it conflicts).
  assert.equal([...signatureTips([a.at(3), a.at(3)])], [0, 1]);
  assert.equal([...signatureTips([{ author: 7, seq: 1 }, null])], [1, 1]);
  assert.equal([...signatureTips([])], []);
});

test.run();
