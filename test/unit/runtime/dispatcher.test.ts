/**
 * Dispatcher: trust, the bounded mailbox, concurrency, init hold, drain and
 * the coding of handler errors. `a` is an authority, `c` is a neighbour that
 * is not; both reach `b` (the dispatcher's endpoint) over real channels.
 */
import * as assert from 'uvu/assert';
import type { Dispatcher } from '../../../runtime/dispatcher.js';
import type { Endpoint } from '../../../runtime/endpoint.js';
import { E, mailboxFull, MeshError } from '../../../runtime/errors.js';
import { deferred, dispatcher, endpoint, isSettled, join, track } from '../../helpers/runtime.js';
import type { Deferred } from '../../helpers/runtime.js';
import { describe, rejectsWith, sleep, until } from '../../helpers/test.js';
import { OBSERVER_TAGS } from '../../../runtime/types.js';

const test = describe('runtime/dispatcher', 3000);

let open: Endpoint[] = [];
test.afterEach(() => {
  for (const e of open) e.close();
  open = [];
});

function setup(
  options: { highWater?: number; concurrency?: number } = {},
  openNow = true,
): { a: Endpoint; c: Endpoint; b: Endpoint; d: Dispatcher } {
  const a = endpoint('a', ['b']);
  const c = endpoint('c', ['b']);
  const b = endpoint('b', ['a', 'c']);
  open.push(a, b, c);
  const d = dispatcher(b, options, openNow);
  join(a, b);
  join(c, b);
  return { a, c, b, d };
}

test('a sender that is not an authority gets ERR_UNTRUSTED and the handler never runs', async () => {
  const { a, c, d } = setup();
  let ran = 0;
  d.on('x', ['a'], () => ++ran);
  await rejectsWith(c.ask('b', 'x'), 'ERR_UNTRUSTED');
  c.tell('b', 'x');
  await until(() => d.received === 2, 1000, 'tell received');
  assert.is(ran, 0);
  assert.is(d.rejected, 2);
  assert.is(d.droppedTells, 1, 'a refused tell cannot be answered, it is counted');
  assert.is(d.handled, 0);
  assert.is(await a.ask('b', 'x'), 1, 'the authority is served');
});

test('an action declared with no authorities is refused to everyone (default deny)', async () => {
  const { a, d } = setup();
  let ran = 0;
  d.on('nobody', [], () => ++ran);
  await rejectsWith(a.ask('b', 'nobody'), 'ERR_UNTRUSTED');
  assert.is(ran, 0);
});

test('an action with no handler is ERR_UNKNOWN_ACTION', async () => {
  const { a, d } = setup();
  await rejectsWith(a.ask('b', 'nope'), 'ERR_UNKNOWN_ACTION');
  assert.is(d.rejected, 1);
  assert.is(d.received, 1);
});

test('declaring the same action twice throws', () => {
  const { d } = setup();
  d.on('x', ['a'], () => 1);
  assert.throws(() => d.on('x', ['a'], () => 2), TypeError);
});

test('past the high-water mark an ask is ERR_MAILBOX_FULL; counters received/handled/rejected/depth', async () => {
  const { a, d } = setup({ highWater: 3, concurrency: 1 });
  const gates: Deferred<string>[] = [];
  d.on('held', ['a'], () => {
    const g = deferred<string>();
    gates.push(g);
    return g.promise;
  });
  const accepted = [1, 2, 3].map(() => track(a.ask('b', 'held')));
  await until(() => d.received === 3, 1000, 'three received');
  assert.is(d.depth, 3);
  assert.is(d.inFlight, 1);
  await rejectsWith(a.ask('b', 'held'), 'ERR_MAILBOX_FULL');
  assert.is(d.received, 4);
  assert.is(d.rejected, 1);
  assert.is(d.handled, 0);
  assert.is(d.depth, 3, 'the refused ask was not queued');

  for (let i = 0; i < 3; i++) {
    await until(() => gates.length === i + 1, 1000, `handler ${i + 1} running`);
    gates[i]!.resolve(`r${i}`);
  }
  assert.equal(
    (await Promise.all(accepted)).map((r) => r.value),
    ['r0', 'r1', 'r2'],
  );
  assert.is(d.handled, 3);
  assert.is(d.depth, 0);
  assert.is(d.latency.snapshot().count, 3);
  // Room again: the next ask is accepted.
  const next = a.ask('b', 'held');
  await until(() => gates.length === 4, 1000, 'fourth handler running');
  gates[3]!.resolve('ok');
  assert.is(await next, 'ok');
});

test('no more than `concurrency` handlers run at once, and all queued work runs', async () => {
  const { a, d } = setup({ concurrency: 3 });
  let running = 0;
  let max = 0;
  d.on('work', ['a'], async (n) => {
    running++;
    max = Math.max(max, running);
    await sleep(5);
    running--;
    return n;
  });
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => a.ask('b', 'work', i)));
  assert.equal(
    results,
    Array.from({ length: 10 }, (_, i) => i),
  );
  assert.is(max, 3);
  assert.is(d.handled, 10);
});

test('concurrency 1 runs handlers one at a time in arrival order', async () => {
  const { a, d } = setup({ concurrency: 1 });
  const log: string[] = [];
  d.on('work', ['a'], async (n) => {
    log.push(`start ${String(n)}`);
    await sleep(2);
    log.push(`end ${String(n)}`);
  });
  await Promise.all([0, 1, 2].map((i) => a.ask('b', 'work', i)));
  assert.equal(log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
});

test('messages are held until open(), then run in arrival order', async () => {
  const { a, d } = setup({ concurrency: 4 }, false);
  const ran: unknown[] = [];
  d.on('echo', ['a'], (n) => {
    ran.push(n);
    return n;
  });
  const asks = [1, 2, 3].map((n) => a.ask('b', 'echo', n));
  await until(() => d.received === 3, 1000, 'three received');
  await sleep(10);
  assert.equal(ran, [], 'a handler ran before open()');
  assert.is(d.depth, 3);
  assert.is(await isSettled(asks[0]!), false);
  d.open();
  assert.equal(await Promise.all(asks), [1, 2, 3]);
  assert.equal(ran, [1, 2, 3]);
});

test('drain() resolves only after running and queued work finished, then new work is ERR_STOPPING', async () => {
  const { a, d } = setup({ concurrency: 1 });
  const gate = deferred<string>();
  d.on('held', ['a'], () => gate.promise);
  d.on('echo', ['a'], (n) => n);
  const first = a.ask('b', 'held');
  const second = a.ask('b', 'echo', 2);
  await until(() => d.received === 2, 1000, 'both received');
  const drained = track(d.drain());
  await sleep(10);
  assert.is(await isSettled(drained), false, 'drain resolved while work was running');
  gate.resolve('one');
  assert.is(await first, 'one');
  assert.is(await second, 2, 'work queued before drain still runs');
  assert.ok((await drained).ok);
  assert.is(d.depth, 0);
  await rejectsWith(a.ask('b', 'echo', 3), 'ERR_STOPPING');
});

test('drain() with nothing to do resolves at once', async () => {
  const { d } = setup();
  const r = track(d.drain());
  assert.is(await isSettled(r), true);
});

test('a handler error that is not a MeshError becomes ERR_HANDLER (sync throw, rejection, non-Error)', async () => {
  const { a, d } = setup();
  d.on('throws', ['a'], () => {
    throw new Error('boom');
  });
  d.on('rejects', ['a'], () => Promise.reject(new RangeError('bad range')));
  d.on('throwsString', ['a'], () => {
    throw 'just a string';
  });
  for (const action of ['throws', 'rejects', 'throwsString']) {
    await rejectsWith(a.ask('b', action), 'ERR_HANDLER');
  }
  assert.is(d.lastError?.code, 'ERR_HANDLER');
  assert.is(d.handled, 3, 'a failed handler still counts as handled');
  assert.is(d.rejected, 0);
});

test('a MeshError thrown by a handler keeps its code across the channel', async () => {
  const { a, d } = setup();
  d.on('coded', ['a'], () => {
    throw E.ERR_BAD_PROOF('custom');
  });
  d.on('codedAsync', ['a'], async () => {
    throw mailboxFull('downstream', 8);
  });
  const e = await rejectsWith(a.ask('b', 'coded'), 'ERR_BAD_PROOF');
  assert.instance(e, MeshError);
  await rejectsWith(a.ask('b', 'codedAsync'), 'ERR_MAILBOX_FULL');
  assert.is(d.lastError?.code, 'ERR_MAILBOX_FULL');
});

test('a failing tell handler is reported to onTellError and nobody gets a reply', async () => {
  const { a, d } = setup();
  const errors: Array<[string, unknown]> = [];
  d.onTellError = (action, err) => errors.push([action, err]);
  d.on('boom', ['a'], () => {
    throw new Error('tell failed');
  });
  a.tell('b', 'boom');
  await until(() => errors.length === 1, 1000, 'tell error reported');
  assert.is(errors[0]![0], 'boom');
  assert.instance(errors[0]![1], Error);
  assert.is(a.pendingAsks, 0);
  assert.is(a.deadLetters, 0);
});

test('describeRoutes lists each action with its authorities', () => {
  const { d } = setup();
  d.on('x', ['a', 'c'], () => 1);
  d.on('y', [], () => 1);
  assert.equal(d.describeRoutes(), [
    { action: 'x', authorities: ['a', 'c'] },
    { action: 'y', authorities: [] },
  ]);
});

test("an observer's ask (OBSERVER_TAGS) is answered but left out of handled, latency and the trace", async () => {
  const { a, d } = setup();
  d.on('x', ['a'], () => 'answer');
  const traced: string[] = [];
  d.tracer = (rec) => traced.push(rec.action);
  assert.is(await a.ask('b', 'x', undefined, { tags: { ...OBSERVER_TAGS } }), 'answer');
  assert.is(await a.ask('b', 'x', undefined, { tags: { ...OBSERVER_TAGS } }), 'answer');
  assert.equal([d.handled, d.observed, d.latency.snapshot().count, traced.length], [0, 2, 0, 0]);
  assert.is(await a.ask('b', 'x'), 'answer');
  assert.equal([d.handled, d.observed, d.latency.snapshot().count, traced], [1, 2, 1, ['x']]);
});
test.run();
