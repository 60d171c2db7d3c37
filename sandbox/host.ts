/**
 * The sandbox host: runs operator-supplied processes under the AOS contract
 * with no ambient authority (docs/design.md §7). Generic; the grant authorizer's
 * policy hook (policy.ts) is its first user.
 *
 * Per message, on the caller's thread: shape check, tag normalisation,
 * trust, assignment and boot rules — refused messages never reach process
 * code. Then the process's bounded inbox: one message at a time per process
 * (each sees the state the previous one left), at most `inbox` waiting.
 * Then a piscina thread runs it in a fresh QuickJS runtime (vm.ts) with the
 * process's memory cap and CPU deadline. The result is sanitised
 * (outbox.ts); the state is committed only if the message succeeded, so a
 * failed or interrupted message leaves no half-written state.
 *
 * A thread stuck where the interrupt cannot reach (it never should be) is
 * terminated by a watchdog and the pool starts another: the host and the
 * other processes carry on.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Piscina } from 'piscina';
import { sandboxModule, stopping, unknownProcess } from '../runtime/errors.js';
import {
  checkMessage,
  isAssignable,
  isAssignment,
  isBoot,
  isTrusted,
  normalize,
  seedOf,
} from './message.js';
import { errorResult, sanitizeResult } from './outbox.js';
import { StateStore } from './state.js';
import { DEFAULT_LIMITS } from './types.js';
import type {
  Environment,
  Limits,
  MessageInput,
  ProcessResult,
  ProcessSpec,
  Tag,
} from './types.js';
import type { Outcome, Task } from './vm.js';
import { poolDefaults } from '../runtime/pool.js';

/** Largest process module file accepted. */
const MAX_MODULE_BYTES = 1024 * 1024;
const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** Watchdog: how long past its deadline a run may take before its thread is terminated. */
const WATCHDOG_GRACE_MS = 500;

export interface HostOptions {
  processes: ProcessSpec[];
  /** Pool threads (QuickJS runs one message at a time per thread). */
  threads?: number;
  /** Limits for processes that do not set their own. */
  limits?: Partial<Limits>;
  /** Where process state is kept across restarts; none: in memory only. */
  stateDir?: string | null;
}

export interface ProcessStats {
  evaluated: number;
  errors: Record<string, number>;
  waiting: number;
  lastMs: number;
}

interface Loaded {
  spec: ProcessSpec;
  source: string;
  moduleHash: string;
  limits: Limits;
  env: Environment;
  /** The last message in line: the next one starts after it settles. */
  tail: Promise<unknown>;
  stats: ProcessStats;
}

export class SandboxHost {
  private readonly processes = new Map<string, Loaded>();
  private readonly pool: Piscina;
  private readonly states: StateStore;
  private closed = false;

  /** Loads every process module (a bad one is ERR_SANDBOX_MODULE) and starts the pool. */
  constructor(opts: HostOptions) {
    const defaults = { ...DEFAULT_LIMITS, ...opts.limits };
    for (const spec of opts.processes) this.load(spec, defaults);
    this.states = new StateStore(opts.stateDir ?? null);
    const threads = opts.threads ?? 1;
    this.pool = new Piscina({
      ...poolDefaults,
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      // 'sync' parks an idle thread in Atomics.wait, where its event loop cannot prepare the
      // next runtime (worker.ts); 'async' waits without blocking it.
      atomics: 'async',
      // The engine's memory is WebAssembly memory, bounded by the process limits; the JS heap
      // of a pool thread holds little more than the task.
      resourceLimits: { maxOldGenerationSizeMb: 128 },
    });
  }

  /** Names of the loaded processes. */
  get names(): string[] {
    return [...this.processes.keys()];
  }

  /**
   * Evaluate one message by `process`. Always resolves with a result; a
   * refusal or a violation is an error result (`Error`, `Code`), never a throw.
   * Throws only for an unknown process (ERR_SANDBOX_NO_PROCESS) or a closed host.
   */
  evaluate(process: string, input: MessageInput): Promise<ProcessResult> {
    if (this.closed) return Promise.reject(stopping('sandbox host'));
    const p = this.processes.get(process);
    if (!p) return Promise.reject(unknownProcess(process));
    const refused = this.refusal(p, input);
    if (refused) return Promise.resolve(this.count(p, refused));
    if (p.stats.waiting >= p.limits.inbox) {
      return Promise.resolve(
        this.count(
          p,
          errorResult(
            'ERR_SANDBOX_INBOX_FULL',
            `the inbox of ${process} is full (${p.limits.inbox} messages waiting)`,
          ),
        ),
      );
    }
    p.stats.waiting++;
    const run = p.tail.then(() => this.run(p, input));
    p.tail = run.catch(() => undefined);
    return run.finally(() => p.stats.waiting--);
  }

  /** The committed state of a process (JSON text). */
  state(process: string): string {
    if (!this.processes.has(process)) throw unknownProcess(process);
    return this.states.get(process);
  }

  stats(): Record<string, ProcessStats> {
    return Object.fromEntries([...this.processes].map(([n, p]) => [n, { ...p.stats }]));
  }

  /** Stop the pool; messages still in line get ERR_SANDBOX_CRASH results. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }

  private load(spec: ProcessSpec, defaults: Limits): void {
    if (!NAME.test(spec.name)) {
      throw sandboxModule(String(spec.name), 'the name must match ^[a-z][a-z0-9_-]{0,31}$');
    }
    if (this.processes.has(spec.name)) throw sandboxModule(spec.name, 'the name is used twice');
    if (typeof spec.owner !== 'string' || spec.owner === '') {
      throw sandboxModule(spec.name, 'an owner is required');
    }
    let source: string;
    try {
      if (statSync(spec.module).size > MAX_MODULE_BYTES) {
        throw new Error(`larger than ${MAX_MODULE_BYTES} bytes`);
      }
      source = readFileSync(spec.module, 'utf8');
    } catch (err) {
      throw sandboxModule(
        spec.name,
        `cannot load module ${spec.module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const moduleHash = createHash('sha256').update(source).digest('hex');
    const tags: Tag[] = [
      { name: 'Name', value: spec.name },
      { name: 'Module', value: moduleHash },
      ...(spec.tags ?? []),
    ];
    this.processes.set(spec.name, {
      spec,
      source,
      moduleHash,
      limits: { ...defaults, ...spec.limits },
      env: {
        Process: {
          Id: spec.name,
          Owner: spec.owner,
          Tags: Object.fromEntries(tags.map((t) => [t.name, t.value])),
          TagArray: tags,
        },
      },
      tail: Promise.resolve(),
      stats: { evaluated: 0, errors: {}, waiting: 0, lastMs: 0 },
    });
  }

  /** The contract's checks before any process code runs; null if the message may run. */
  private refusal(p: Loaded, input: MessageInput): ProcessResult | null {
    const bad = checkMessage(input);
    if (bad) return errorResult('ERR_SANDBOX_MESSAGE', bad);
    const msg = normalize(input, p.spec.name);
    if (!isTrusted(msg, p.spec)) {
      return errorResult('ERR_SANDBOX_UNTRUSTED', 'Message is not trusted by this process!');
    }
    if (isAssignment(msg, p.spec.name) && !isAssignable(msg, p.spec.assignables ?? [])) {
      return errorResult('ERR_SANDBOX_ASSIGNMENT', 'Assignment is not trusted by this process!');
    }
    if (isBoot(msg) && msg.From !== p.spec.owner) {
      return errorResult('ERR_SANDBOX_BOOT', 'Only the owner may boot this process!');
    }
    return null;
  }

  private async run(p: Loaded, input: MessageInput): Promise<ProcessResult> {
    if (this.closed)
      return this.count(p, errorResult('ERR_SANDBOX_CRASH', 'the sandbox is closed'));
    const msg = normalize(input, p.spec.name);
    const task: Task = {
      process: p.spec.name,
      source: p.source,
      state: this.states.get(p.spec.name),
      msg,
      env: p.env,
      seed: seedOf(msg, p.moduleHash),
      boot: isBoot(msg),
      limits: p.limits,
    };
    const outcome = await this.runOnPool(task);
    p.stats.lastMs = outcome.ms;
    if (!outcome.ok) return this.count(p, errorResult(outcome.code, outcome.error));
    const result = sanitizeResult(outcome.result, p.spec.name);
    if (result.Error === undefined) this.states.set(p.spec.name, outcome.state);
    return this.count(p, result);
  }

  private async runOnPool(task: Task): Promise<Outcome> {
    const watchdog = new AbortController();
    const timer = setTimeout(
      () => watchdog.abort(),
      task.limits.deadlineMs * 2 + WATCHDOG_GRACE_MS,
    );
    const started = performance.now();
    try {
      return (await this.pool.run(task, { signal: watchdog.signal })) as Outcome;
    } catch {
      const ms = performance.now() - started;
      if (watchdog.signal.aborted) {
        return {
          ok: false,
          code: 'ERR_SANDBOX_TIMEOUT',
          error: `the handler ran past its ${task.limits.deadlineMs} ms deadline`,
          ms,
        };
      }
      return { ok: false, code: 'ERR_SANDBOX_CRASH', error: 'the sandbox failed', ms };
    } finally {
      clearTimeout(timer);
    }
  }

  private count(p: Loaded, r: ProcessResult): ProcessResult {
    p.stats.evaluated++;
    if (r.Code) p.stats.errors[r.Code] = (p.stats.errors[r.Code] ?? 0) + 1;
    return r;
  }
}
