import { Worker } from 'node:worker_threads';
import * as assert from 'uvu/assert';
import { chargedMs, tickFor, watchedDeadline } from '../../../supervisor/deadline.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/deadline');

/** Blocks the main thread, as a supervisor busy serialising answers does. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A worker that answers one message after `delayMs`, like an actor's health call. */
function answerer(delayMs: number): Worker {
  return new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.once('message', () => setTimeout(() => parentPort.postMessage('ok'), ${delayMs}));`,
    { eval: true },
  );
}

test('a tick is charged what elapsed, but never more than two periods', () => {
  assert.is(chargedMs(30, 25), 30);
  assert.is(chargedMs(5_000, 25), 50);
  assert.is(chargedMs(-3, 25), 0, 'a clock step backwards charges nothing');
  assert.is(tickFor(2000), 250);
  assert.is(tickFor(40), 10);
});

test('with nobody answering, the deadline expires after its time, once', async () => {
  const start = performance.now();
  let fired = 0;
  await new Promise<void>((resolve) => {
    watchedDeadline(200, () => {
      fired++;
      resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.is(fired, 1);
  assert.ok(performance.now() - start >= 200, 'not before its time');
});

test('cancelled, it never fires', async () => {
  let fired = false;
  const cancel = watchedDeadline(50, () => (fired = true));
  cancel();
  await new Promise((r) => setTimeout(r, 200));
  assert.is(fired, false);
});

test('an answer that arrived while the main thread stalled wins over the deadline', async () => {
  // The worker answers 50 ms in; the main thread stalls for four deadlines,
  // in the check phase (a setImmediate), so the next loop iteration runs its
  // timers before it polls the worker's port. A plain setTimeout fires first
  // there; the watched deadline must let the waiting answer through.
  const race = async (arm: (onExpire: () => void) => void): Promise<string> => {
    const w = answerer(50);
    try {
      await new Promise((r) => w.once('online', r));
      return await new Promise<string>((resolve) => {
        w.once('message', () => resolve('answer'));
        arm(() => resolve('deadline'));
        w.postMessage('health');
        setImmediate(() => stall(800));
      });
    } finally {
      await w.terminate();
    }
  };
  assert.is(
    await race((onExpire) => setTimeout(onExpire, 200)),
    'deadline',
    'the plain timer blames the worker for the stall (the defect this guards against)',
  );
  assert.is(await race((onExpire) => watchedDeadline(200, onExpire)), 'answer');
});

test.run();
