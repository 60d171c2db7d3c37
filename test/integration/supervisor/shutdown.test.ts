/**
 * Graceful stop, shutdown timeouts, and the data-plane guarantees seen
 * through the supervisor on real workers: trust, bounded mailboxes, and the
 * counters an operator reads with stats()/inspect().
 */
import * as assert from 'uvu/assert';
import { Supervisor } from '../../../supervisor/supervisor.js';
import { infoOf, recordEvents } from '../../helpers/observe.js';
import { track } from '../../helpers/runtime.js';
import { memoryLogger, probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe, rejectsWith, until } from '../../helpers/test.js';

const test = describe('supervisor/shutdown', 6000);

test('stop() stops children in reverse start order and resolves done with code 0', async () => {
  const { logger, records } = memoryLogger();
  const sup = new Supervisor(
    { children: ['a', 'b', 'c', 'd'].map((n) => probe(n, { shutdownMs: 1000 })) },
    { logger },
  );
  await sup.start();
  const events = recordEvents(sup);
  const result = await sup.stop('test');
  assert.equal(result, { code: 0, reason: 'test' });
  assert.equal(events, ['stopped:d', 'stopped:c', 'stopped:b', 'stopped:a']);
  const logged = records.filter((r) => r.msg === 'actor stopped').map((r) => r.actor);
  assert.equal(logged, ['d', 'c', 'b', 'a']);
  for (const c of sup.info()) {
    assert.is(c.state, 'stopped', c.name);
    assert.is(c.threadId, null, c.name);
  }
  assert.not.ok(
    records.some((r) => r.msg === 'graceful stop failed; terminating'),
    'every child stopped gracefully',
  );
  assert.is(await sup.done, result, 'done carries the same result');
});

test('stop() twice is one stop; asks after it reject ERR_ACTOR_EXITED', async () => {
  const { logger } = memoryLogger();
  const sup = new Supervisor({ children: [probe('a')] }, { logger });
  await sup.start();
  const first = sup.stop('one');
  const second = sup.stop('two');
  assert.equal(await first, { code: 0, reason: 'one' });
  assert.equal(await second, { code: 0, reason: 'one' });
  await rejectsWith(sup.ask('a', 'ping', undefined, { timeoutMs: 500 }), 'ERR_ACTOR_EXITED');
  assert.is(sup.pendingAdminAsks, 0);
});

test('stop() lets an in-flight ask finish (drain) before the child goes', async () => {
  await withSupervisor({ children: [probe('a', { shutdownMs: 2000 })] }, async (sup) => {
    const slow = track(sup.ask('a', 'slow', { ms: 200 }));
    await until(async () => (await sup.stats('a')).running === 1, 1000, 'slow ask running');
    const result = await sup.stop('drain');
    assert.is(result.code, 0);
    const r = await slow;
    assert.ok(r.ok, `in-flight ask rejected ${r.code} instead of finishing`);
    assert.is(r.value, 'done');
  });
});

test('a stop hook slower than shutdownMs is terminated at the timeout; stop completes near shutdownMs', async () => {
  const shutdownMs = 300;
  /** Terminating a worker idle in a timer takes a few ms; this is room for a loaded machine. */
  const MARGIN_MS = 250;
  const { logger, records } = memoryLogger();
  const sup = new Supervisor(
    {
      children: [
        probe('fast', { shutdownMs: 1000 }),
        probe('sluggish', { shutdownMs, options: { stopDelayMs: 10_000 } }),
      ],
    },
    { logger },
  );
  await sup.start();
  const events = recordEvents(sup);
  let sluggishAt = 0;
  sup.on('child:stopped', (p: { name: string }) => {
    if (p.name === 'sluggish') sluggishAt = Date.now();
  });
  const t0 = Date.now();
  const result = await sup.stop('test');
  const total = Date.now() - t0;
  assert.is(result.code, 0);
  assert.equal(events, ['stopped:sluggish', 'stopped:fast'], 'still in reverse order');
  const took = sluggishAt - t0;
  assert.ok(took >= shutdownMs - 5, `terminated after ${took} ms, before its ${shutdownMs} ms`);
  assert.ok(
    took <= shutdownMs + MARGIN_MS,
    `sluggish was stopped ${took} ms after stop(); its shutdownMs is ${shutdownMs}`,
  );
  assert.ok(total <= shutdownMs + 2 * MARGIN_MS, `stop() took ${total} ms`);
  assert.ok(
    records.some((r) => r.msg === 'graceful stop failed; terminating' && r.actor === 'sluggish'),
    'sluggish was terminated, not stopped gracefully',
  );
  assert.is(infoOf(sup, 'sluggish').threadId, null);
});

test('shutdownMs 0 terminates the child at once, without waiting for its stop hook', async () => {
  const { logger } = memoryLogger();
  const sup = new Supervisor(
    { children: [probe('brutal', { shutdownMs: 0, options: { stopDelayMs: 10_000 } })] },
    { logger },
  );
  await sup.start();
  const t0 = Date.now();
  assert.is((await sup.stop()).code, 0);
  const took = Date.now() - t0;
  assert.ok(took < 250, `stop() took ${took} ms`);
});

test('trust through the supervisor: adminOnly from a neighbour and nobody from admin are ERR_UNTRUSTED', async () => {
  await withSupervisor(
    {
      children: [probe('a', {}, ['b']), probe('b', {}, ['a'])],
      topology: [['a', 'b']],
    },
    async (sup) => {
      assert.is(await sup.ask('a', 'adminOnly'), 'secret', 'admin is the authority');
      await rejectsWith(sup.ask('b', 'forward', { to: 'a', action: 'adminOnly' }), 'ERR_UNTRUSTED');
      await rejectsWith(sup.ask('a', 'nobody'), 'ERR_UNTRUSTED');
      const stats = await sup.stats('a');
      assert.is(stats.rejected, 2);
      // received: adminOnly (admin), adminOnly (b), nobody (admin); handled only the first.
      assert.is(stats.received, 3);
      assert.is(stats.handled, 1);
      assert.is(sup.pendingAdminAsks, 0);
    },
  );
});

test('capability by construction: an actor cannot ask one it holds no channel to (ERR_NO_ROUTE)', async () => {
  await withSupervisor(
    { children: [probe('a', {}, ['b']), probe('b', {}, ['a'])] },
    async (sup) => {
      // No topology: a holds a channel to admin only.
      await rejectsWith(sup.ask('a', 'forward', { to: 'b', action: 'ping' }), 'ERR_NO_ROUTE');
      await rejectsWith(sup.ask('nobody_here', 'ping'), 'ERR_NO_ROUTE');
      assert.is((await sup.stats('b')).received, 0);
    },
  );
});

test('mailbox overflow in a real worker: past highWater the next ask is ERR_MAILBOX_FULL, counted in stats', async () => {
  await withSupervisor(
    { children: [probe('a', { mailbox: { highWater: 4, concurrency: 1 } })] },
    async (sup) => {
      const accepted = Array.from({ length: 4 }, () => track(sup.ask('a', 'slow', { ms: 150 })));
      await until(async () => (await sup.stats('a')).depth === 4, 1000, 'four in the mailbox');
      await rejectsWith(sup.ask('a', 'ping'), 'ERR_MAILBOX_FULL');
      let s = await sup.stats('a');
      assert.is(s.highWater, 4);
      assert.is(s.depth, 4, 'the refused ask was not queued');
      assert.is(s.running, 1);
      assert.is(s.received, 5);
      assert.is(s.rejected, 1);
      assert.is(s.handled, 0);

      for (const r of await Promise.all(accepted)) assert.is(r.value, 'done');
      s = await sup.stats('a');
      assert.is(s.handled, 4);
      assert.is(s.depth, 0);
      assert.is(s.rejected, 1);
      assert.is(await sup.ask('a', 'ping'), 'pong', 'room again once drained');
    },
  );
});

test('stats() and inspect() report counters, latency, links, actions and actor state', async () => {
  await withSupervisor(
    {
      children: [probe('a', {}, ['b']), probe('b', {}, ['a'])],
      topology: [['a', 'b']],
    },
    async (sup) => {
      for (let i = 0; i < 3; i++) assert.is(sup.tell('a', 'count'), true);
      assert.is(await sup.ask('a', 'counted'), 3);
      await rejectsWith(sup.ask('a', 'fail'), 'ERR_HANDLER');

      const s = await sup.stats('a');
      assert.is(s.name, 'a');
      assert.is(s.received, 5);
      assert.is(s.handled, 5);
      assert.is(s.rejected, 0);
      assert.is(s.depth, 0);
      assert.is(s.running, 0);
      assert.is(s.highWater, 1024, 'the default high-water mark');
      assert.is(s.latency.count, 5);
      assert.is(
        s.latency.counts.reduce((x, y) => x + y, 0),
        5,
        'every handled message is in a bucket',
      );
      assert.ok(s.heapUsed > 0 && s.heapTotal >= s.heapUsed);
      assert.is(s.lastError?.code, 'ERR_HANDLER');

      const i = await sup.inspect('a');
      assert.equal(i.state, { count: 3 });
      assert.is(i.stats.received, 5);
      const links = Object.fromEntries(i.links.map((l) => [l.peer, l]));
      assert.equal(links.admin, { peer: 'admin', state: 'up', pending: 0, queued: 0 });
      assert.equal(links.b, { peer: 'b', state: 'up', pending: 0, queued: 0 });
      const actions = Object.fromEntries(i.actions.map((x) => [x.action, x.authorities]));
      assert.equal(actions.adminOnly, ['admin']);
      assert.equal(actions.nobody, []);
      assert.equal(actions.ping, ['admin', 'b']);
    },
  );
});

test.run();
