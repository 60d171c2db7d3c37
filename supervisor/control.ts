/**
 * The supervisor's side of the control plane: comlink over the worker,
 * made unable to hang. comlink keeps a call pending forever when the worker
 * dies (nobody will ever answer its message id), so every call here races
 * the worker's exit and a deadline and always settles — with the answer,
 * or with ERR_CONTROL.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { control } from '../runtime/errors.js';
import { watchedDeadline } from './deadline.js';
import type {
  ActorInspect,
  ActorStats,
  ControlApi,
  TraceRecord,
  WorkerBoot,
} from '../runtime/types.js';

/** Control calls are small and local; anything slower than this means a stuck actor. */
const DEFAULT_CALL_TIMEOUT_MS = 2000;

export class ControlChannel {
  private readonly remote: Comlink.Remote<ControlApi>;
  /** Rejecters of calls in flight; one set, not a .then per call on `exited` (that would leak). */
  private readonly inFlight = new Set<(err: Error) => void>();
  private dead = false;

  constructor(
    private readonly name: string,
    worker: Worker,
    /** Resolves when the worker has exited; every pending call rejects then. */
    exited: Promise<unknown>,
  ) {
    this.remote = Comlink.wrap<ControlApi>(nodeEndpoint(worker as never));
    void exited.then(() => {
      this.dead = true;
      for (const reject of this.inFlight) reject(control(this.name, 'call', 'worker exited'));
      this.inFlight.clear();
    });
  }

  /** Hand a warm spare its actor (the log port travels with it). */
  boot(boot: WorkerBoot, timeoutMs: number): Promise<void> {
    return this.call(
      'boot',
      () => this.remote.boot(Comlink.transfer(boot, [boot.logPort as never])),
      timeoutMs,
    );
  }

  init(timeoutMs: number): Promise<void> {
    return this.call('init', () => this.remote.init(), timeoutMs);
  }

  /** `timeoutMs`: a worker that boots itself answers only once its actor module has loaded. */
  connect(peer: string, port: MessagePort, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<void> {
    return this.call(
      'connect',
      () => this.remote.connect(peer, Comlink.transfer(port, [port as never])),
      timeoutMs,
    );
  }

  peerDown(peer: string, final: boolean): Promise<void> {
    return this.call('peerDown', () => this.remote.peerDown(peer, final));
  }

  health(timeoutMs: number): Promise<{ ok: true; ts: number }> {
    return this.call('health', () => this.remote.health(), timeoutMs);
  }

  stats(timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<ActorStats> {
    return this.call('stats', () => this.remote.stats(), timeoutMs);
  }

  inspect(timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<ActorInspect> {
    return this.call('inspect', () => this.remote.inspect(), timeoutMs);
  }

  setLogLevel(level: string): Promise<void> {
    return this.call('setLogLevel', () => this.remote.setLogLevel(level));
  }

  /** A trace answers when it is done: its own time limit plus a margin. */
  trace(count: number, ms: number): Promise<TraceRecord[]> {
    return this.call('trace', () => this.remote.trace(count, ms), ms + DEFAULT_CALL_TIMEOUT_MS);
  }

  stop(deadlineMs: number, timeoutMs: number): Promise<void> {
    return this.call('stop', () => this.remote.stop(deadlineMs), timeoutMs);
  }

  private call<T>(
    what: string,
    fn: () => Promise<T>,
    timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ): Promise<T> {
    if (this.dead) return Promise.reject(control(this.name, what, 'worker exited'));
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        done();
        reject(err);
      };
      // Watched time, not wall time: a stalled supervisor must not blame the worker.
      const cancel = watchedDeadline(timeoutMs, () =>
        fail(control(this.name, what, `no answer within ${timeoutMs} ms`)),
      );
      const done = () => {
        cancel();
        this.inFlight.delete(fail);
      };
      this.inFlight.add(fail);
      fn().then(
        (v) => {
          done();
          resolve(v);
        },
        (err: unknown) => {
          done();
          reject(control(this.name, what, err instanceof Error ? err.message : String(err)));
        },
      );
    });
  }
}
