/**
 * Every value that crosses a thread boundary between the supervisor and the
 * actors is typed in runtime/ (piscina keeps the same habit in its
 * types.ts): the envelope and the control plane here; the request and reply
 * of every action in runtime/protocol/<actor>.ts, checked where it arrives.
 * (A pool's task payloads are typed beside their task: the journal's verify
 * tasks in actors/journal/verify-task.ts, sandbox runs in sandbox/types.ts.)
 *
 * Two planes:
 *  - data plane: raw MessagePorts between actors (and the supervisor's
 *    `admin` endpoint), carrying the lean `Envelope`;
 *  - control plane: comlink over the worker's parentPort, implementing
 *    `ControlApi` (health, stats, inspect, wiring, stop).
 */
import type { MessagePort } from 'node:worker_threads';

/** The main thread's endpoint name: operator commands come from here. */
export const ADMIN = 'admin';

/**
 * Rows in one answer of the journal's `view {view, after?}` without a key:
 * a longer view is read page by page (`after` = the last key of the page
 * before; runtime/view-pages.ts), so an answer stays bounded.
 */
export const VIEW_PAGE_ROWS = 1000;

/** Envelope kinds. Numbers, not strings: the envelope is cloned per message. */
export const TELL = 0;
export const ASK = 1;
export const REPLY = 2;
export const REPLY_ERROR = 3;
export type EnvelopeKind = typeof TELL | typeof ASK | typeof REPLY | typeof REPLY_ERROR;

export interface ErrorPayload {
  code: string;
  message: string;
}

/**
 * The data-plane message, modelled on the AOS process message.
 * `id` is unique per sender for the sender's lifetime; `ref` (on replies)
 * is the id of the ask being answered. `from` is checked by the receiver
 * against the channel it arrived on, so it cannot be forged.
 */
/**
 * Tags of an ask made for an observer — the console's once-a-second poll:
 * the receiving dispatcher leaves it out of its handled count, latency and
 * traces (it counts it as `observed`), so watching a node does not change
 * what is watched.
 */
export const OBSERVER_TAGS: Readonly<Record<string, string>> = Object.freeze({ observer: '1' });

export interface Envelope {
  k: EnvelopeKind;
  id: number;
  from: string;
  to: string;
  action: string;
  ts: number;
  data?: unknown;
  tags?: Record<string, string>;
  ref?: number;
  error?: ErrorPayload;
}

/** A histogram snapshot: counts per upper bound (µs), plus derived figures. */
export interface LatencySnapshot {
  count: number;
  sumUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Upper bounds in µs; the last bucket is +Inf. */
  boundsUs: number[];
  counts: number[];
}

/** Counters an actor reports over the control plane. */
export interface ActorStats {
  name: string;
  received: number;
  handled: number;
  /** Handled for an observer (OBSERVER_TAGS): the console's polls, apart from `handled`. */
  observed: number;
  rejected: number;
  deadLetters: number;
  depth: number;
  running: number;
  highWater: number;
  latency: LatencySnapshot;
  heapUsed: number;
  heapTotal: number;
  /**
   * The actor's event loop since its worker started (ms busy, ms idle):
   * deltas of `activeMs` over wall time are the share of one core it uses.
   */
  loop: { activeMs: number; idleMs: number };
  /** The actor's own metrics (name → value), from its registry. */
  metrics: Record<string, number>;
  lastError?: ErrorPayload;
  /** The last few handler errors, oldest first, with when and on which action. */
  recentErrors?: Array<ErrorPayload & { at: number; action: string }>;
}

/** What `inspect()` returns: stats plus the actor's own view of itself. */
export interface ActorInspect {
  stats: ActorStats;
  links: Array<{ peer: string; state: LinkState; pending: number; queued: number }>;
  actions: Array<{ action: string; authorities: string[] }>;
  state: unknown;
}

export type LinkState = 'waiting' | 'up' | 'down' | 'gone';

/** Given to each worker at spawn, as `workerData`. Plain data only. */
export interface WorkerBoot {
  name: string;
  /** Absolute file URL of the actor module; its default export extends Actor. */
  moduleUrl: string;
  /** The actor's own options, from the child spec (plain data). */
  options: Record<string, unknown>;
  /** Every name this actor may ever address (its topology neighbours). */
  peers: string[];
  mailbox: { highWater: number; concurrency: number };
  askTimeoutMs: number;
  logLevel: string;
  /** Log records go to the main thread's logger over this port (see log.ts). */
  logPort: MessagePort;
}

/** Control plane, exposed by each worker with comlink. */
export interface ControlApi {
  /** Become the actor `boot` describes (a warm spare's first call; cold workers boot themselves). */
  boot(boot: WorkerBoot): Promise<void>;
  /** Run the actor's init; resolves when it is ready to serve. */
  init(): Promise<void>;
  /** Attach a (new) port for a peer: initial wiring or re-wiring after a restart. */
  connect(peer: string, port: MessagePort): Promise<void>;
  /**
   * The peer's worker exited. `final`: no restart will follow (temporary
   * child, or the node is stopping), so asks queued for it reject now.
   */
  peerDown(peer: string, final: boolean): Promise<void>;
  health(): { ok: true; ts: number };
  stats(): Promise<ActorStats>;
  inspect(): Promise<ActorInspect>;
  /** Stop accepting, drain, run the actor's stop hook; bounded by deadlineMs. */
  stop(deadlineMs: number): Promise<void>;
  /** Change the level below which the actor's log records are not even sent. */
  setLogLevel(level: string): Promise<void>;
  /**
   * Record the next `count` messages the actor handles or refuses, for at
   * most `ms`; resolves with them. One trace at a time per actor.
   */
  trace(count: number, ms: number): Promise<TraceRecord[]>;
}

/** One traced message: who sent what, how long it took, how it ended (never its data). */
export interface TraceRecord {
  at: number;
  from: string;
  action: string;
  kind: 'ask' | 'tell';
  us: number;
  /** 'ok' or the error code it was answered with. */
  outcome: string;
}

/**
 * `meshnode init --new-mesh NAME` leaves this file in the state directory;
 * the journal founds the mesh at its first start and removes it.
 */
export const FOUND_REQUEST_FILE = 'found-mesh.json';
