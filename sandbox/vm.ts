/**
 * One message in one fresh QuickJS runtime: memory limit, stack limit and a
 * deadline interrupt set before any process code runs; prelude, module,
 * handle; the result and the new state come back as JSON text. Nothing of
 * the realm outlives the message, so a run depends only on (module, state,
 * message) and a process cannot keep hidden state on a pool thread.
 *
 * QuickJS aborts the whole WebAssembly instance if a runtime is freed in a
 * bad state (seen after a stack overflow). So after a timeout, a memory
 * error or any failure to dispose, the caller is told the engine is
 * `poisoned` and drops the instance for a fresh one: the next message never
 * runs on it.
 *
 * The interrupt handler runs between bytecodes; a single native call (a
 * huge fill, sort or allocation) does not check it. The host's watchdog
 * (host.ts) covers that case by terminating the thread.
 */
import type {
  QuickJSContext,
  QuickJSHandle,
  QuickJSRuntime,
  QuickJSWASMModule,
} from 'quickjs-emscripten';
import { PRELUDE } from './prelude.js';
import type { Environment, Limits, Message, SandboxCode } from './types.js';

/** QuickJS's own C stack budget for process code (deep recursion is a memory error, not a crash). */
const STACK_BYTES = 256 * 1024;
/** Violations after which the engine instance is not used again. */
const POISONING = new Set<SandboxCode>([
  'ERR_SANDBOX_TIMEOUT',
  'ERR_SANDBOX_MEMORY',
  'ERR_SANDBOX_CRASH',
]);
/** An error text longer than this is cut: it is for operators, not a channel out. */
const MAX_ERROR = 512;

export interface Task {
  process: string;
  source: string;
  state: string;
  msg: Message;
  env: Environment;
  seed: number[];
  boot: boolean;
  limits: Limits;
}

export type Outcome =
  | { ok: true; result: string; state: string; ms: number }
  | { ok: false; code: SandboxCode; error: string; ms: number };

interface Failure {
  code: SandboxCode;
  error: string;
}

/**
 * A fresh runtime with the prelude compiled and nothing else run in it.
 * Compiling the prelude is most of a message's cost (~0.5 ms), so the
 * worker prepares the next one while it waits (worker.ts).
 */
export interface Prepared {
  rt: QuickJSRuntime;
  vm: QuickJSContext;
  prelude: QuickJSHandle;
}

export function prepare(engine: QuickJSWASMModule): Prepared {
  const rt = engine.newRuntime();
  rt.setMaxStackSize(STACK_BYTES);
  const vm = rt.newContext();
  const prelude = vm.unwrapResult(vm.evalCode(PRELUDE, 'meshnode:prelude', { type: 'global' }));
  return { rt, vm, prelude };
}

export function runTask(
  engine: QuickJSWASMModule,
  task: Task,
  ready?: Prepared,
): { outcome: Outcome; poisoned: boolean } {
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 1000) / 1000;
  let poisoned = false;
  let outcome: Outcome;
  let p: Prepared | undefined;
  const handles: QuickJSHandle[] = [];
  const keep = (h: QuickJSHandle): QuickJSHandle => (handles.push(h), h);
  try {
    p = ready ?? prepare(engine);
    let interrupted = false;
    const deadline = Date.now() + task.limits.deadlineMs;
    p.rt.setMemoryLimit(task.limits.memoryBytes);
    p.rt.setInterruptHandler(() => (interrupted ||= Date.now() > deadline));
    keep(p.prelude);
    const r = execute(p.vm, p.prelude, task, keep, () => interrupted);
    outcome = 'code' in r ? { ok: false, ...r, ms: ms() } : { ok: true, ...r, ms: ms() };
  } catch {
    // The engine itself failed (a WebAssembly abort): never reuse it.
    poisoned = true;
    outcome = {
      ok: false,
      code: 'ERR_SANDBOX_CRASH',
      error: 'the sandbox engine failed',
      ms: ms(),
    };
  }
  // After a limit hit, the engine's state is suspect: it is dropped whole, not cleaned up
  // (freeing a runtime interrupted mid-allocation can abort the instance, and takes time).
  if (!outcome.ok && POISONING.has(outcome.code)) return { outcome, poisoned: true };
  try {
    for (const h of handles.reverse()) if (h.alive) h.dispose();
    p?.vm.dispose();
    p?.rt.dispose();
  } catch {
    poisoned = true;
  }
  return { outcome, poisoned };
}

function execute(
  vm: QuickJSContext,
  prelude: QuickJSHandle,
  task: Task,
  keep: (h: QuickJSHandle) => QuickJSHandle,
  interrupted: () => boolean,
): Failure | { result: string; state: string } {
  const fail = (err: QuickJSHandle): Failure => failure(vm, keep(err), task, interrupted());
  const input = keep(
    vm.newString(
      JSON.stringify({
        msg: task.msg,
        env: task.env,
        state: JSON.parse(task.state) as unknown,
        seed: task.seed,
        boot: task.boot,
      }),
    ),
  );
  const runner = vm.callFunction(prelude, vm.undefined, input);
  if (runner.error) return fail(runner.error);
  keep(runner.value);
  // The file name the process sees in its own errors: its name, never a host path.
  const mod = vm.evalCode(task.source, `process:${task.process}`, { type: 'module' });
  if (mod.error) return fail(mod.error);
  const exports = settle(vm, keep(mod.value), keep);
  if ('code' in exports) return exports;
  const start = vm.callMethod(runner.value, 'start', [exports.value]);
  if (start.error) return fail(start.error);
  keep(start.value);
  const jobs = vm.runtime.executePendingJobs();
  if (jobs.error) return fail(jobs.error);
  const finish = vm.callMethod(runner.value, 'finish', []);
  if (finish.error) return fail(finish.error);
  const pair = keep(finish.value);
  const result = vm.getString(keep(vm.getProp(pair, 0)));
  const state = vm.getString(keep(vm.getProp(pair, 1)));
  const resultBytes = Buffer.byteLength(result);
  if (resultBytes > task.limits.maxOutputBytes) {
    return {
      code: 'ERR_SANDBOX_OUTPUT',
      error: `the result is ${resultBytes} bytes, over the ${task.limits.maxOutputBytes}-byte limit`,
    };
  }
  const stateBytes = Buffer.byteLength(state);
  if (stateBytes > task.limits.maxStateBytes) {
    return {
      code: 'ERR_SANDBOX_OUTPUT',
      error: `the state is ${stateBytes} bytes, over the ${task.limits.maxStateBytes}-byte limit`,
    };
  }
  return { result, state };
}

/** A module with top-level await evaluates to a promise of its exports. */
function settle(
  vm: QuickJSContext,
  value: QuickJSHandle,
  keep: (h: QuickJSHandle) => QuickJSHandle,
): Failure | { value: QuickJSHandle } {
  const first = vm.getPromiseState(value);
  if (first.type === 'fulfilled' && first.notAPromise) return { value };
  if (first.type === 'fulfilled') return { value: keep(first.value) };
  if (first.type === 'rejected') return handlerError(vm, keep(first.error));
  const jobs = vm.runtime.executePendingJobs();
  if (jobs.error) return handlerError(vm, keep(jobs.error));
  const later = vm.getPromiseState(value);
  if (later.type === 'fulfilled') return { value: keep(later.value) };
  if (later.type === 'rejected') return handlerError(vm, keep(later.error));
  return { code: 'ERR_SANDBOX_HANDLER', error: 'the module did not finish evaluating' };
}

/** Which limit (if any) an exception from the engine stands for. */
function failure(
  vm: QuickJSContext,
  err: QuickJSHandle,
  task: Task,
  interrupted: boolean,
): Failure {
  if (interrupted) {
    return {
      code: 'ERR_SANDBOX_TIMEOUT',
      error: `the handler ran past its ${task.limits.deadlineMs} ms deadline`,
    };
  }
  const f = handlerError(vm, err);
  if (f.error === 'InternalError: out of memory') {
    return {
      code: 'ERR_SANDBOX_MEMORY',
      error: `out of memory (limit ${Math.round(task.limits.memoryBytes / 1048576)} MiB)`,
    };
  }
  if (f.error === 'InternalError: string too long') {
    return { code: 'ERR_SANDBOX_MEMORY', error: "a string over the engine's maximum length" };
  }
  if (f.error === 'InternalError: stack overflow') {
    return { code: 'ERR_SANDBOX_MEMORY', error: 'stack overflow (recursion too deep)' };
  }
  return f;
}

/** `Name: message` of what the process threw; no stack (its frames are the process's own anyway). */
function handlerError(vm: QuickJSContext, err: QuickJSHandle): Failure {
  let text: string;
  try {
    const e = vm.dump(err) as unknown;
    if (e && typeof e === 'object' && 'message' in e) {
      const { name, message } = e as { name?: unknown; message?: unknown };
      text = `${typeof name === 'string' ? name : 'Error'}: ${String(message)}`;
    } else {
      text = typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
    }
  } catch {
    text = 'the handler threw a value that cannot be shown';
  }
  return { code: 'ERR_SANDBOX_HANDLER', error: text.slice(0, MAX_ERROR) };
}
