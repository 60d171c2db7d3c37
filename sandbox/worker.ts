/**
 * Piscina task: run one message (vm.ts) on a pool thread. Each thread holds
 * one QuickJS WebAssembly instance; a run that hit a limit or broke the
 * engine drops it, and the next message gets a fresh instance (~10 ms), so
 * nothing a violation left behind is ever run on again.
 *
 * Between messages the thread prepares the next runtime (prelude compiled,
 * no process code run in it): the compile is then off the message's path.
 */
import { RELEASE_SYNC, newQuickJSWASMModule } from 'quickjs-emscripten';
import type { QuickJSWASMModule } from 'quickjs-emscripten';
import { prepare, runTask } from './vm.js';
import type { Outcome, Prepared, Task } from './vm.js';

let engine: Promise<QuickJSWASMModule> | null = null;
let next: { engine: QuickJSWASMModule; prepared: Prepared } | null = null;

export default async function run(task: Task): Promise<Outcome> {
  const current = (engine ??= newQuickJSWASMModule(RELEASE_SYNC));
  const e = await current;
  const ready = next?.engine === e ? next.prepared : undefined;
  next = null;
  const { outcome, poisoned } = runTask(e, task, ready);
  if (poisoned && engine === current) engine = null;
  setImmediate(prepareNext);
  return outcome;
}

function prepareNext(): void {
  if (next || !engine) return;
  const current = engine;
  void current.then((e) => {
    if (next || engine !== current) return;
    try {
      next = { engine: e, prepared: prepare(e) };
    } catch {
      engine = null;
    }
  });
}
