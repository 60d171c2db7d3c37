/**
 * The data plane's wire form: what an Envelope looks like inside a
 * MessagePort. A tuple, not an object — structured clone writes every
 * property name of an object on every message, and on a one-way stream of
 * small tells that was over a third of the runtime's cost over a raw port.
 *
 *   [k, id, action, ts, data?, ref?, tags?, error?]
 *
 * `from` and `to` are not sent: the receiver knows both from the channel the
 * tuple arrived on (the sender is whoever holds the other end, so it cannot
 * be forged). Only threads of one process speak it, so it is versioned with
 * the code, not on disk.
 */
import type { Envelope, EnvelopeKind, ErrorPayload } from './types.js';

export type Wire = [
  k: EnvelopeKind,
  id: number,
  action: string,
  ts: number,
  data?: unknown,
  ref?: number,
  tags?: Record<string, string>,
  error?: ErrorPayload,
];

export function toWire(env: Envelope): Wire {
  if (env.error !== undefined)
    return [env.k, env.id, env.action, env.ts, env.data, env.ref, env.tags, env.error];
  if (env.tags !== undefined)
    return [env.k, env.id, env.action, env.ts, env.data, env.ref, env.tags];
  if (env.ref !== undefined) return [env.k, env.id, env.action, env.ts, env.data, env.ref];
  return [env.k, env.id, env.action, env.ts, env.data];
}

/** A tell's or ask's tuple, built directly (the hot path: no Envelope object first). */
export function requestWire(
  k: EnvelopeKind,
  id: number,
  action: string,
  data: unknown,
  tags: Record<string, string> | undefined,
): Wire {
  return tags
    ? [k, id, action, Date.now(), data, undefined, tags]
    : [k, id, action, Date.now(), data];
}

/** Rebuild the envelope: `from` is the channel's peer, `to` the receiving endpoint. */
export function fromWire(w: Wire, from: string, to: string): Envelope {
  const env: Envelope = { k: w[0], id: w[1], from, to, action: w[2], ts: w[3], data: w[4] };
  if (w[5] !== undefined) env.ref = w[5];
  if (w[6] !== undefined) env.tags = w[6];
  if (w[7] !== undefined) env.error = w[7];
  return env;
}
