/**
 * Runtime fixtures for tests that run endpoints and dispatchers in one
 * thread: endpoints joined by a real MessageChannel, deferred promises to
 * hold handlers open, and a recorder of when (and how) a promise settled.
 */
import { MessageChannel } from 'node:worker_threads';
import { Dispatcher } from '../../runtime/dispatcher.js';
import type { DispatcherOptions } from '../../runtime/dispatcher.js';
import { Endpoint } from '../../runtime/endpoint.js';
import type { EndpointOptions } from '../../runtime/endpoint.js';

/** An endpoint with test-friendly defaults (5 s asks, queue of 16). */
export function endpoint(
  name: string,
  peers: readonly string[],
  extra: Partial<EndpointOptions> = {},
): Endpoint {
  return new Endpoint({ name, peers, askTimeoutMs: 5000, queueLimit: 16, ...extra });
}

/**
 * Join two endpoints with a fresh MessageChannel: `a` knows the channel as
 * `asPeerOfA` (default b's name), `b` knows it as `asPeerOfB` (default a's
 * name). Naming them differently is how a test forges a sender.
 */
export function join(
  a: Endpoint,
  b: Endpoint,
  asPeerOfA: string = b.name,
  asPeerOfB: string = a.name,
): MessageChannel {
  const channel = new MessageChannel();
  a.attach(asPeerOfA, channel.port1);
  b.attach(asPeerOfB, channel.port2);
  return channel;
}

/** A dispatcher with a generous mailbox, opened unless told otherwise. */
export function dispatcher(
  ep: Endpoint,
  extra: Partial<DispatcherOptions> = {},
  open = true,
): Dispatcher {
  const d = new Dispatcher(ep, { name: ep.name, highWater: 64, concurrency: 1, ...extra });
  if (open) d.open();
  return d;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

export function deferred<T = unknown>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** How and when (Date.now(), ms) a promise settled. */
export interface Settled {
  ok: boolean;
  value?: unknown;
  code?: string;
  at: number;
}

/** Never rejects: resolves with the outcome of `p` and the time it settled. */
export function track(p: Promise<unknown>): Promise<Settled> {
  return p.then(
    (value) => ({ ok: true, value, at: Date.now() }),
    (err: unknown) => ({ ok: false, code: (err as { code?: string }).code, at: Date.now() }),
  );
}

/** True once `p` has settled (checked after a macrotask turn). */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}
