/**
 * The provider's nonce book (actors/grants/nonces.ts): single use, expiry,
 * bound to the peer it was issued to, bounded in size overall and per peer.
 * Time is passed in explicitly, so no test sleeps.
 */
import * as assert from 'uvu/assert';
import { MAX_OUTSTANDING, MAX_PER_PEER, NonceBook } from '../../../actors/grants/nonces.js';
import { keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('grants/nonces');

const alice = keyOf(1).did;
const bob = keyOf(2).did;
const T = 1_700_000_000_000;
const TTL = 10_000;

test('a nonce is 32 random bytes in base64url (the wire format of grantNonce)', () => {
  const book = new NonceBook(TTL);
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const { nonce, expiresAt } = book.issue(alice, T);
    assert.match(nonce, /^[A-Za-z0-9_-]{43}$/);
    assert.is(expiresAt, T + TTL);
    seen.add(nonce);
  }
  assert.is(seen.size, 100, 'no nonce repeats');
});

test('single use: the first consume succeeds, the second fails', () => {
  const book = new NonceBook(TTL);
  const { nonce } = book.issue(alice, T);
  assert.is(book.consume(nonce, alice, T + 1), true);
  assert.is(book.consume(nonce, alice, T + 2), false);
  assert.is(book.size, 0);
});

test('a nonce never issued is refused', () => {
  const book = new NonceBook(TTL);
  book.issue(alice, T);
  assert.is(book.consume('A'.repeat(43), alice, T), false);
  assert.is(book.consume('', alice, T), false);
  assert.is(book.size, 1, 'a refused unknown nonce takes nothing out of the book');
});

test('expiry: good until the TTL, refused at and after it', () => {
  const book = new NonceBook(TTL);
  const a = book.issue(alice, T);
  const b = book.issue(alice, T);
  const c = book.issue(alice, T);
  assert.is(book.consume(a.nonce, alice, T + TTL - 1), true, 'one ms before expiry');
  assert.is(book.consume(b.nonce, alice, T + TTL), false, 'at expiry');
  assert.is(book.consume(c.nonce, alice, T + TTL + 60_000), false, 'long after');
});

test('an expired nonce stays used up: it is not good again for anyone', () => {
  const book = new NonceBook(TTL);
  const { nonce } = book.issue(alice, T);
  assert.is(book.consume(nonce, alice, T + TTL), false);
  assert.is(book.consume(nonce, alice, T), false, 'even with the clock turned back');
});

test('bound to the peer: another peer cannot use it, and the attempt burns it', () => {
  const book = new NonceBook(TTL);
  const { nonce } = book.issue(alice, T);
  assert.is(book.consume(nonce, bob, T + 1), false, "bob presents alice's nonce");
  assert.is(book.consume(nonce, alice, T + 2), false, 'gone at first use, successful or not');
});

test('each peer has its own nonces', () => {
  const book = new NonceBook(TTL);
  const a = book.issue(alice, T);
  const b = book.issue(bob, T);
  assert.is(book.consume(b.nonce, bob, T + 1), true);
  assert.is(book.consume(a.nonce, alice, T + 1), true);
});

test('bounded per peer: a peer that hoards nonces loses its own oldest', () => {
  const book = new NonceBook(TTL);
  const first = book.issue(alice, T);
  const rest = Array.from({ length: MAX_PER_PEER }, (_, i) => book.issue(alice, T + i));
  assert.is(book.size, MAX_PER_PEER);
  assert.is(book.consume(first.nonce, alice, T + 100), false, 'the oldest was dropped');
  assert.is(book.consume(rest.at(-1)!.nonce, alice, T + 100), true, 'the newest is good');
  assert.is(book.consume(rest[0]!.nonce, alice, T + 100), true, 'so is the second oldest');
});

test("a hoarding peer never pushes out another peer's nonce", () => {
  const book = new NonceBook(TTL);
  const bobs = book.issue(bob, T);
  for (let i = 0; i < MAX_PER_PEER * 10; i++) book.issue(alice, T);
  assert.is(book.size, MAX_PER_PEER + 1);
  assert.is(book.consume(bobs.nonce, bob, T + 1), true);
});

test('bounded overall: at MAX_OUTSTANDING the oldest of all is dropped', () => {
  const book = new NonceBook(TTL);
  // Enough peers that none reaches its own share: only the overall bound applies.
  const peers = 1000;
  assert.ok((MAX_OUTSTANDING + 50) / peers < MAX_PER_PEER);
  const first = book.issue('peer-0', T);
  let last = first;
  for (let i = 1; i < MAX_OUTSTANDING + 50; i++) {
    last = book.issue(`peer-${i % peers}`, T);
  }
  assert.is(book.size, MAX_OUTSTANDING);
  assert.is(book.consume(first.nonce, 'peer-0', T + 1), false, 'the oldest was dropped');
  assert.is(book.consume(last.nonce, `peer-${(MAX_OUTSTANDING + 49) % peers}`, T + 1), true);
});

test('many peers each within their share all keep their nonces', () => {
  const book = new NonceBook(TTL);
  const issued = Array.from({ length: 200 }, (_, i) => ({
    peer: `peer-${i}`,
    ...book.issue(`peer-${i}`, T),
  }));
  for (const n of issued) assert.is(book.consume(n.nonce, n.peer, T + 1), true, n.peer);
  assert.is(book.size, 0);
});

test('after being used, a peer may be issued fresh nonces up to its share again', () => {
  const book = new NonceBook(TTL);
  for (let round = 0; round < 3; round++) {
    const ns = Array.from({ length: MAX_PER_PEER }, () => book.issue(alice, T));
    for (const n of ns) assert.is(book.consume(n.nonce, alice, T + 1), true, `round ${round}`);
  }
  assert.is(book.size, 0);
});

test.run();
