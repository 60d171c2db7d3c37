/**
 * Endpoint: the data plane of one thread. Two endpoints joined by a real
 * MessageChannel in this thread (a Dispatcher on the receiving side where
 * a handler is needed, or the raw far port where the test plays the peer).
 */
import { MessageChannel } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as assert from 'uvu/assert';
import { fromWire, toWire } from '../../../runtime/wire.js';
import type { Wire } from '../../../runtime/wire.js';
import type { Endpoint } from '../../../runtime/endpoint.js';
import { ASK, REPLY, TELL } from '../../../runtime/types.js';
import type { Envelope } from '../../../runtime/types.js';
import { deferred, dispatcher, endpoint, isSettled, join, track } from '../../helpers/runtime.js';
import { describe, rejectsWith, sleep, until } from '../../helpers/test.js';

const test = describe('runtime/endpoint', 3000);

/** Everything a test opened; closed after each test so no port keeps the process alive. */
let open: Array<Endpoint | MessagePort> = [];
const keep = <T extends Endpoint | MessagePort>(x: T): T => {
  open.push(x);
  return x;
};
test.afterEach(() => {
  for (const x of open) x.close();
  open = [];
});

/** a and b joined, with a dispatcher on b serving echo, hang and slow for `a`. */
function pair(aExtra: Parameters<typeof endpoint>[2] = {}) {
  const a = keep(endpoint('a', ['b'], aExtra));
  const b = keep(endpoint('b', ['a']));
  const d = dispatcher(b, { concurrency: 16 });
  d.on('echo', ['a'], (data) => data);
  d.on('hang', ['a'], () => new Promise(() => {}));
  d.on('slow', ['a'], (data) => sleep(data as number).then(() => 'late'));
  const channel = join(a, b);
  return { a, b, d, channel };
}

test('ask resolves with the reply whose ref matches its id, even when replies come back out of order', async () => {
  const a = keep(endpoint('a', ['b']));
  const { port1, port2 } = new MessageChannel();
  keep(port2);
  a.attach('b', port1);
  const asks: Envelope[] = [];
  port2.on('message', (w: Wire) => asks.push(fromWire(w, 'a', 'b')));

  const p = [1, 2, 3].map((n) => a.ask('b', 'times10', n, { tags: { n: String(n) } }));
  await until(() => asks.length === 3, 1000, 'three asks on the wire');
  for (const env of asks) {
    assert.is(env.k, ASK);
    assert.is(env.from, 'a');
    assert.is(env.to, 'b');
    assert.is(env.action, 'times10');
    assert.type(env.ts, 'number');
    assert.equal(env.tags, { n: String(env.data) });
  }
  assert.is(new Set(asks.map((e) => e.id)).size, 3, 'ids are unique');
  // Answer in reverse order: each ask must take the reply carrying its own id as ref.
  for (const env of [...asks].reverse()) {
    port2.postMessage(
      toWire({
        k: REPLY,
        id: 100 + env.id,
        from: 'b',
        to: 'a',
        action: env.action,
        ts: Date.now(),
        ref: env.id,
        data: (env.data as number) * 10,
      } satisfies Envelope),
    );
  }
  assert.equal(await Promise.all(p), [10, 20, 30]);
  assert.is(a.pendingAsks, 0);
  assert.is(a.deadLetters, 0);
});

test('ask/reply through a dispatcher: the handler result comes back; tells carry no ref', async () => {
  const { a, d } = pair();
  const seen: Envelope[] = [];
  d.on('note', ['a'], (_data, env) => void seen.push(env));
  assert.equal(await a.ask('b', 'echo', { deep: [1, 2] }), { deep: [1, 2] });
  assert.is(a.tell('b', 'note', 'x'), true);
  await until(() => seen.length === 1, 1000, 'tell handled');
  assert.is(seen[0]!.k, TELL);
  assert.is(seen[0]!.ref, undefined);
  assert.is(a.pendingAsks, 0);
});

test('a reply whose ref matches no pending ask is counted as a dead letter', async () => {
  const a = keep(endpoint('a', ['b']));
  const { port1, port2 } = new MessageChannel();
  keep(port2);
  a.attach('b', port1);
  port2.postMessage(
    toWire({
      k: REPLY,
      id: 1,
      from: 'b',
      to: 'a',
      action: 'x',
      ts: Date.now(),
      ref: 999,
    } satisfies Envelope),
  );
  await until(() => a.deadLetters === 1, 1000, 'dead letter counted');
});

test('ask with a short timeoutMs rejects ERR_TIMEOUT near its deadline and leaves nothing pending', async () => {
  const { a } = pair();
  const t0 = performance.now();
  await rejectsWith(a.ask('b', 'hang', undefined, { timeoutMs: 30 }), 'ERR_TIMEOUT');
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 28, `timed out after ${elapsed.toFixed(1)} ms, before its 30 ms`);
  assert.ok(elapsed < 250, `timed out after ${elapsed.toFixed(1)} ms, far past its 30 ms`);
  assert.is(a.pendingAsks, 0);
});

test('without timeoutMs an ask uses the endpoint askTimeoutMs', async () => {
  const { a } = pair({ askTimeoutMs: 40 });
  const t0 = performance.now();
  await rejectsWith(a.ask('b', 'hang'), 'ERR_TIMEOUT');
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 38 && elapsed < 300, `timed out after ${elapsed.toFixed(1)} ms`);
});

test('a short timeout is not held up by an earlier, longer one; the longer one still fires on time', async () => {
  const { a } = pair();
  const t0 = performance.now();
  const long = track(a.ask('b', 'hang', undefined, { timeoutMs: 300 }));
  const short = await track(a.ask('b', 'hang', undefined, { timeoutMs: 30 }));
  assert.is(short.code, 'ERR_TIMEOUT');
  assert.ok(performance.now() - t0 < 200, 'the 30 ms ask waited for the 300 ms timer');
  assert.is(await isSettled(long), false, 'the 300 ms ask settled early');
  const l = await long;
  assert.is(l.code, 'ERR_TIMEOUT');
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 295 && elapsed < 600, `300 ms ask timed out after ${elapsed.toFixed(1)} ms`);
  assert.is(a.pendingAsks, 0);
});

test('asking or telling an actor the endpoint holds no channel to is ERR_NO_ROUTE', async () => {
  const { a } = pair();
  await rejectsWith(a.ask('stranger', 'echo', 1), 'ERR_NO_ROUTE');
  assert.is(a.tell('stranger', 'echo', 1), false);
  assert.is(a.deadLetters, 1);
  const { port1, port2 } = new MessageChannel();
  keep(port1);
  keep(port2);
  try {
    a.attach('stranger', port1);
    assert.unreachable('attach to an unknown peer must throw');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_NO_ROUTE');
  }
  assert.is(a.pendingAsks, 0);
});

test("asks and tells made while the link is 'waiting' are queued and delivered after attach", async () => {
  const a = keep(endpoint('a', ['b']));
  const b = keep(endpoint('b', ['a']));
  const d = dispatcher(b);
  d.on('echo', ['a'], (data) => data);
  const told: unknown[] = [];
  d.on('note', ['a'], (data) => void told.push(data));

  const p1 = a.ask('b', 'echo', 1);
  const p2 = a.ask('b', 'echo', 2);
  assert.is(a.tell('b', 'note', 3), false, 'tell reports it was not sent yet');
  assert.equal(a.describeLinks(), [{ peer: 'b', state: 'waiting', pending: 2, queued: 3 }]);
  await sleep(20);
  assert.is(await isSettled(p1), false);
  assert.is(d.received, 0);

  join(a, b);
  assert.equal(await Promise.all([p1, p2]), [1, 2]);
  await until(() => told.length === 1, 1000, 'queued tell delivered');
  assert.equal(told, [3]);
  assert.equal(a.describeLinks(), [{ peer: 'b', state: 'up', pending: 0, queued: 0 }]);
});

test('a queued ask times out on its own deadline and is not sent after a later attach', async () => {
  const a = keep(endpoint('a', ['b']));
  const b = keep(endpoint('b', ['a']));
  const d = dispatcher(b);
  d.on('echo', ['a'], (data) => data);
  await rejectsWith(a.ask('b', 'echo', 1, { timeoutMs: 20 }), 'ERR_TIMEOUT');
  join(a, b);
  assert.is(await a.ask('b', 'echo', 2), 2);
  assert.is(d.received, 1, 'the timed-out ask must not be sent');
});

test('the per-link queue is bounded: past queueLimit an ask is ERR_MAILBOX_FULL and a tell is refused', async () => {
  const a = keep(endpoint('a', ['b'], { queueLimit: 2 }));
  const b = keep(endpoint('b', ['a']));
  dispatcher(b).on('echo', ['a'], (data) => data);
  const p1 = a.ask('b', 'echo', 1);
  const p2 = a.ask('b', 'echo', 2);
  await rejectsWith(a.ask('b', 'echo', 3), 'ERR_MAILBOX_FULL');
  assert.is(a.tell('b', 'echo', 4), false);
  assert.is(a.deadLetters, 1, 'the refused tell is a dead letter');
  assert.is(a.pendingAsks, 2);
  join(a, b);
  assert.equal(await Promise.all([p1, p2]), [1, 2]);
});

test('asks that timed out while queued give their queue slot back', async () => {
  const a = keep(endpoint('a', ['b'], { queueLimit: 2 }));
  const b = keep(endpoint('b', ['a']));
  dispatcher(b).on('echo', ['a'], (data) => data);
  await Promise.all([
    rejectsWith(a.ask('b', 'echo', 1, { timeoutMs: 10 }), 'ERR_TIMEOUT'),
    rejectsWith(a.ask('b', 'echo', 2, { timeoutMs: 10 }), 'ERR_TIMEOUT'),
  ]);
  assert.is(a.pendingAsks, 0);
  // Nothing live is queued: a new ask must be accepted, not refused as full.
  const next = track(a.ask('b', 'echo', 3));
  join(a, b);
  const r = await next;
  assert.is(r.code, undefined, `refused with ${r.code}`);
  assert.is(r.value, 3);
});

test('peerDown(final=true) rejects an in-flight ask ERR_ACTOR_EXITED; later asks reject at once', async () => {
  const { a, d } = pair();
  const inFlight = track(a.ask('b', 'hang'));
  await until(() => d.inFlight === 1, 1000, 'ask reached the handler');
  a.peerDown('b', true);
  const r = await inFlight;
  assert.is(r.code, 'ERR_ACTOR_EXITED');
  assert.is(a.describeLinks()[0]!.state, 'gone');
  await rejectsWith(a.ask('b', 'echo', 1), 'ERR_ACTOR_EXITED');
  assert.is(a.tell('b', 'echo', 1), false);
  assert.is(a.pendingAsks, 0);
});

test('peerDown(final=true) also rejects asks still queued for the peer', async () => {
  const a = keep(endpoint('a', ['b']));
  const queued = track(a.ask('b', 'echo', 1));
  a.peerDown('b', true);
  assert.is((await queued).code, 'ERR_ACTOR_EXITED');
  assert.equal(a.describeLinks(), [{ peer: 'b', state: 'gone', pending: 0, queued: 0 }]);
});

test('peerDown(final=false) rejects sent asks but keeps queued ones for the next instance', async () => {
  const { a, b, d } = pair();
  const inFlight = track(a.ask('b', 'hang'));
  await until(() => d.inFlight === 1, 1000, 'ask reached the handler');
  a.peerDown('b', false);
  assert.is((await inFlight).code, 'ERR_ACTOR_EXITED');
  assert.is(a.describeLinks()[0]!.state, 'down');
  const next = a.ask('b', 'echo', 'again');
  await sleep(10);
  assert.is(await isSettled(next), false, 'an ask to a restarting peer waits for it');
  // The "new instance": a fresh channel to b.
  join(a, b);
  assert.is(await next, 'again');
});

test('a reply the peer sent before the supervisor reports it down still settles its ask', async () => {
  const a = keep(endpoint('a', ['b']));
  const { port1, port2 } = new MessageChannel();
  keep(port2);
  a.attach('b', port1);
  const arrived = new Promise<Envelope>((resolve) =>
    port2.once('message', (w: Wire) => resolve(fromWire(w, 'a', 'b'))),
  );
  const ask = track(a.ask('b', 'x'));
  const env = await arrived;
  // The peer answers, then dies; the supervisor's peerDown reaches this
  // thread before the reply was dispatched (the worker 'exit' event and the
  // port's messages are separate event sources on the main thread).
  port2.postMessage(
    toWire({
      k: REPLY,
      id: 1,
      from: 'b',
      to: 'a',
      action: 'x',
      ts: Date.now(),
      ref: env.id,
      data: 'answered',
    } satisfies Envelope),
  );
  a.peerDown('b', false);
  const r = await ask;
  assert.ok(r.ok, `the reply was sent, yet the ask rejected ${r.code}`);
  assert.is(r.value, 'answered');
});

test('when the far port closes, in-flight asks reject ERR_ACTOR_EXITED at once', async () => {
  const { a, d, channel } = pair();
  const asks = [track(a.ask('b', 'hang')), track(a.ask('b', 'hang'))];
  await until(() => d.inFlight === 2, 1000, 'asks reached the handler');
  const t0 = Date.now();
  channel.port2.close();
  for (const r of await Promise.all(asks)) {
    assert.is(r.code, 'ERR_ACTOR_EXITED');
    assert.ok(r.at - t0 < 100, `settled ${r.at - t0} ms after the close`);
  }
  assert.is(a.describeLinks()[0]!.state, 'down');
  assert.is(a.pendingAsks, 0);
});

test('a reply that arrives after its ask timed out is counted as a dead letter', async () => {
  const { a, d } = pair();
  await rejectsWith(a.ask('b', 'slow', 60, { timeoutMs: 15 }), 'ERR_TIMEOUT');
  assert.is(a.deadLetters, 0);
  await until(() => d.handled === 1, 1000, 'slow handler finished');
  await until(() => a.deadLetters === 1, 1000, 'late reply counted');
  assert.is(a.pendingAsks, 0);
});

test('a forged `from` is refused ERR_UNTRUSTED and the handler never runs', async () => {
  const b = keep(endpoint('b', ['a', 'c']));
  const d = dispatcher(b);
  let ran = 0;
  d.on('x', ['c'], () => ++ran);
  // The channel b knows as "a" is held by an endpoint that signs itself "c".
  const mallory = keep(endpoint('c', ['b']));
  join(mallory, b, 'b', 'a');
  await rejectsWith(mallory.ask('b', 'x'), 'ERR_UNTRUSTED');
  mallory.tell('b', 'x');
  await until(() => d.received === 2, 1000, 'forged tell received');
  assert.is(ran, 0);
  assert.is(d.rejected, 2);
  // The real c, on the channel b knows as "c", is served.
  const c = keep(endpoint('c', ['b']));
  join(c, b);
  assert.is(await c.ask('b', 'x'), 1);
});

test('close() rejects everything outstanding ERR_ACTOR_EXITED and the peer sees its link close', async () => {
  const { a, b, d } = pair();
  const d2 = deferred();
  d.on('held', ['a'], () => d2.promise);
  const inFlight = track(a.ask('b', 'held'));
  await until(() => d.inFlight === 1, 1000, 'ask reached the handler');
  a.close();
  assert.is((await inFlight).code, 'ERR_ACTOR_EXITED');
  await until(() => b.describeLinks()[0]!.state === 'down', 1000, "b's link to a down");
  await rejectsWith(a.ask('b', 'echo', 1), 'ERR_ACTOR_EXITED');
  d2.resolve('too late');
});

test.run();
