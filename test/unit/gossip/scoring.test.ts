/**
 * Peer scoring, bans, reconnect backoff and the frame-rate token bucket
 * (actors/gossip/scoring.ts): pure functions over plain records and an
 * explicit clock, so every case is exact.
 */
import * as assert from 'uvu/assert';
import {
  BAN_BASE_MS,
  BAN_MAX_MS,
  FULL_SCORE,
  PENALTY,
  RECOVERY_PER_MINUTE,
  backoffDelay,
  banDuration,
  charge,
  currentScore,
  take,
} from '../../../actors/gossip/scoring.js';
import type { Offence, ScoreState } from '../../../actors/gossip/scoring.js';
import { describe } from '../../helpers/test.js';

const test = describe('gossip/scoring');

const T = 1_700_000_000_000;
const MINUTE = 60_000;
const fresh = (at = T): ScoreState => ({ score: FULL_SCORE, at });

test('a fresh peer is at full score and stays there: recovery never exceeds FULL_SCORE', () => {
  assert.is(currentScore(fresh(), T), FULL_SCORE);
  assert.is(currentScore(fresh(), T + 60 * MINUTE), FULL_SCORE);
});

test('each offence costs its penalty, and an invalid signature costs the most', () => {
  for (const offence of Object.keys(PENALTY) as Offence[]) {
    const { state, ban } = charge(fresh(), offence, T);
    assert.is(state.score, FULL_SCORE - PENALTY[offence], offence);
    assert.is(state.at, T);
    assert.is(ban, false, `one ${offence} alone does not ban`);
  }
  const worst = Math.max(...Object.values(PENALTY));
  assert.is(PENALTY.invalidEntry, worst);
});

test('the score recovers at RECOVERY_PER_MINUTE after an offence, up to full', () => {
  const { state } = charge(fresh(), 'invalidEntry', T);
  assert.is(currentScore(state, T), 50);
  assert.is(currentScore(state, T + MINUTE), 50 + RECOVERY_PER_MINUTE);
  assert.is(currentScore(state, T + 2 * MINUTE), 50 + 2 * RECOVERY_PER_MINUTE);
  assert.is(currentScore(state, T + MINUTE / 2), 50 + RECOVERY_PER_MINUTE / 2);
  assert.is(currentScore(state, T + 100 * MINUTE), FULL_SCORE);
  assert.is(currentScore(state, T - MINUTE), 50, 'a clock going backwards recovers nothing');
});

test('charging applies recovery first, then the penalty', () => {
  let s = charge(fresh(), 'invalidEntry', T).state; // 50
  s = charge(s, 'malformed', T + 2 * MINUTE).state; // 50 + 10 - 25
  assert.is(s.score, 35);
  assert.is(s.at, T + 2 * MINUTE);
});

test('the peer is banned when the score reaches zero, not before', () => {
  let s = fresh();
  const bans: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    const r = charge(s, 'malformed', T); // 25 each: 75, 50, 25, 0
    s = r.state;
    bans.push(r.ban);
  }
  assert.equal(bans, [false, false, false, true]);
  assert.is(s.score, 0);

  const two = charge(charge(fresh(), 'invalidEntry', T).state, 'invalidEntry', T);
  assert.is(two.ban, true, 'two forged entries in a row ban');

  const apart = charge(charge(fresh(), 'invalidEntry', T).state, 'invalidEntry', T + 30);
  assert.ok(apart.state.score > 0, 'a sliver recovered in 30 ms');
  assert.is(apart.ban, true, 'two forged entries a few ms apart ban all the same');

  let flood = fresh();
  let count = 0;
  for (let banned = false; !banned; count++) {
    const r = charge(flood, 'flood', T);
    flood = r.state;
    banned = r.ban;
  }
  assert.is(count, FULL_SCORE / PENALTY.flood);
});

test('recovery between offences can keep a slow offender from a ban', () => {
  let s = fresh();
  for (let i = 0; i < 20; i++) {
    // One protocol offence (10) every two minutes, recovering 10 meanwhile.
    const r = charge(s, 'protocol', T + i * 2 * MINUTE);
    assert.is(r.ban, false, `offence ${i}`);
    s = r.state;
  }
  assert.is(s.score, FULL_SCORE - PENALTY.protocol);
});

test('ban durations double from BAN_BASE_MS and stop at BAN_MAX_MS', () => {
  assert.is(banDuration(1), BAN_BASE_MS);
  assert.is(banDuration(2), 2 * BAN_BASE_MS);
  assert.is(banDuration(3), 4 * BAN_BASE_MS);
  assert.is(banDuration(0), BAN_BASE_MS, 'a count below 1 is the first ban');
  let prev = 0;
  for (let n = 1; n <= 100; n++) {
    const d = banDuration(n);
    assert.ok(d >= prev, `ban ${n} is not shorter than ban ${n - 1}`);
    assert.ok(d <= BAN_MAX_MS, `ban ${n} is capped`);
    prev = d;
  }
  assert.is(banDuration(11), 1024 * BAN_BASE_MS);
  assert.is(banDuration(12), BAN_MAX_MS, 'the 12th ban would double past the cap');
  assert.is(banDuration(1e9), BAN_MAX_MS, 'no overflow for absurd counts');
});

test('backoff grows exponentially from base, is capped, and jitters within [ceiling/2, ceiling]', () => {
  const low = () => 0;
  const high = () => 1;
  const mid = () => 0.5;
  const base = 500;
  const max = 30_000;
  assert.is(backoffDelay(0, base, max, low), 250);
  assert.is(backoffDelay(0, base, max, high), 500);
  assert.is(backoffDelay(1, base, max, high), 1000);
  assert.is(backoffDelay(3, base, max, high), 4000);
  assert.is(backoffDelay(3, base, max, mid), 3000);
  assert.is(backoffDelay(3, base, max, low), 2000);
  assert.is(backoffDelay(10, base, max, high), max);
  assert.is(backoffDelay(10, base, max, low), max / 2);
  assert.is(backoffDelay(1000, base, max, high), max, 'huge attempts do not overflow');
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceiling = Math.min(max, base * 2 ** attempt);
    for (const r of [0, 0.1, 0.37, 0.5, 0.99, 1]) {
      const d = backoffDelay(attempt, base, max, () => r);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}, random ${r}: ${d}`);
    }
  }
});

test('backoff with the real random source stays in bounds and actually jitters', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(4, 100, 10_000);
    assert.ok(d >= 800 && d <= 1600, String(d));
    seen.add(d);
  }
  assert.ok(seen.size > 20, `jitter spreads redials (${seen.size} distinct delays)`);
});

test('the token bucket allows a burst, then refills at rate per second, never beyond burst', () => {
  const rate = 10;
  const burst = 5;
  let b = { tokens: burst, at: T };
  const allowed: boolean[] = [];
  for (let i = 0; i < 7; i++) {
    const r = take(b, 1, rate, burst, T);
    b = r.bucket;
    allowed.push(r.ok);
  }
  assert.equal(allowed, [true, true, true, true, true, false, false]);

  let r = take(b, 1, rate, burst, T + 50); // half a token
  assert.is(r.ok, false);
  r = take(r.bucket, 1, rate, burst, T + 100); // one token in 100 ms at 10/s
  assert.is(r.ok, true);
  assert.ok(Math.abs(r.bucket.tokens) < 1e-9);

  r = take(r.bucket, 1, rate, burst, T + 100 + 3_600_000);
  assert.is(r.ok, true);
  assert.is(r.bucket.tokens, burst - 1, 'an hour idle refills to burst, not beyond');

  const many = take({ tokens: burst, at: T }, burst + 1, rate, burst, T);
  assert.is(many.ok, false, 'asking for more than the burst never succeeds');
  assert.is(many.bucket.tokens, burst, 'a refused take spends nothing');
});

test.run();
