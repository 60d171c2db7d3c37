/**
 * Peer scoring, bans and reconnect backoff: small pure functions over plain
 * records, so the policy is tested without sockets.
 *
 * A peer starts at FULL_SCORE. Each offence costs its PENALTY; the score
 * creeps back at RECOVERY_PER_MINUTE while the peer behaves. At or below
 * zero the peer is disconnected and banned; each ban of the same DID lasts
 * twice the one before (BAN_BASE_MS … BAN_MAX_MS), so a peer that keeps
 * coming back with garbage is shut out for longer and longer.
 */

export const FULL_SCORE = 100;
export const RECOVERY_PER_MINUTE = 5;
export const BAN_BASE_MS = 60_000;
export const BAN_MAX_MS = 24 * 3600_000;

/** What each offence costs. An invalid signature is the worst: it is never an accident. */
export const PENALTY = {
  /** Not a frame: not JSON, unknown type, wrong fields, over a limit. */
  malformed: 25,
  /** An entry the journal refused as forged or broken (signature, schema, size). */
  invalidEntry: 50,
  /** A well-formed frame at the wrong time, or entries that do not chain. */
  protocol: 10,
  /** Relayed an entry that conflicts with one we hold (the author is at fault, the relay maybe not). */
  equivocation: 10,
  /** A frame over the rate limit (dropped). */
  flood: 5,
  /** An answer that claims entries it then does not send. */
  emptyAnswer: 5,
} as const;
export type Offence = keyof typeof PENALTY;

export interface ScoreState {
  score: number;
  /** When the score was last brought up to date (ms). */
  at: number;
}

/** The score now, after recovery since `s.at`. */
export function currentScore(s: ScoreState, now: number): number {
  const recovered = ((now - s.at) / 60_000) * RECOVERY_PER_MINUTE;
  return Math.min(FULL_SCORE, s.score + Math.max(0, recovered));
}

/** Charge an offence; returns the new state and whether the peer must now be banned. */
export function charge(
  s: ScoreState,
  offence: Offence,
  now: number,
): { state: ScoreState; ban: boolean } {
  const score = currentScore(s, now) - PENALTY[offence];
  // Recovery is continuous, so offences that add up to FULL_SCORE a few ms
  // apart leave a sliver above zero: less than one point left is zero.
  return { state: { score, at: now }, ban: score < 1 };
}

/** How long the `n`th ban (1-based) of one DID lasts. */
export function banDuration(n: number): number {
  return Math.min(BAN_MAX_MS, BAN_BASE_MS * 2 ** Math.max(0, Math.min(n - 1, 40)));
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from
 * `baseMs`, capped at `maxMs`, with "equal jitter" (half fixed, half random)
 * so peers that lost a common link do not all redial in the same instant.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export { take, type Bucket } from '../../runtime/token-bucket.js';
