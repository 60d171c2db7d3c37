/**
 * Restart semantics on real worker threads (the probe actor): strategies,
 * restart types, intensity escalation, re-wiring and init failure.
 * Thread ids prove which children were restarted and which were not.
 */
import * as assert from 'uvu/assert';
import { Supervisor } from '../../../supervisor/supervisor.js';
import { infoOf, nextEvent, recordEvents, threadIds } from '../../helpers/observe.js';
import { track } from '../../helpers/runtime.js';
import { memoryLogger, probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe, rejectsWith, sleep, until } from '../../helpers/test.js';

const test = describe('supervisor/restart', 8000);

interface WhoAmI {
  name: string;
  from: string;
  threadId: number;
}

/**
 * Ask `name` for an action after which it dies (crash, exitNormally). The
 * reply races the death: the reply, or ERR_ACTOR_EXITED, are both fine.
 */
async function askFinal(sup: Supervisor, name: string, action: string, data?: unknown) {
  const r = await track(sup.ask(name, action, data));
  if (!r.ok) assert.is(r.code, 'ERR_ACTOR_EXITED');
  return r;
}

/** Crash `name` (a thrown error on its next turn unless `kind` says otherwise). */
async function crash(sup: Supervisor, name: string, kind = 'throw'): Promise<void> {
  const r = await askFinal(sup, name, 'crash', { kind });
  if (r.ok) assert.is(r.value, 'crashing');
}

/** Make `name` end normally (exit code 0). */
async function exitNormally(sup: Supervisor, name: string): Promise<void> {
  const r = await askFinal(sup, name, 'exitNormally');
  if (r.ok) assert.is(r.value, 'bye');
}

const three = (strategy: string) => ({
  strategy,
  children: [probe('a'), probe('b'), probe('c')],
});

test('one_for_one restarts only the failed child; the others keep their threads', async () => {
  await withSupervisor(three('one_for_one'), async (sup) => {
    const before = threadIds(sup);
    const events = recordEvents(sup);
    const restarted = nextEvent(sup, 'child:restarted', 'b');
    await crash(sup, 'b');
    await restarted;
    const after = threadIds(sup);
    assert.is(after.a, before.a);
    assert.is(after.c, before.c);
    assert.ok(after.b !== null && after.b !== before.b, 'b runs on a new thread');
    assert.equal(events, ['exit:b', 'up:b', 'restarted:b']);
    assert.equal(
      sup.info().map((c) => c.restarts),
      [0, 1, 0],
    );
    const who = (await sup.ask('b', 'whoami')) as WhoAmI;
    assert.is(who.threadId, after.b);
  });
});

test('rest_for_one restarts the failed child and those started after it, in order; not earlier ones', async () => {
  await withSupervisor(three('rest_for_one'), async (sup) => {
    const before = threadIds(sup);
    const events = recordEvents(sup);
    const last = nextEvent(sup, 'child:restarted', 'c');
    await crash(sup, 'b');
    await last;
    const after = threadIds(sup);
    assert.is(after.a, before.a, 'a, started before b, keeps its thread');
    assert.ok(after.b !== null && after.b !== before.b, 'b restarted');
    assert.ok(after.c !== null && after.c !== before.c, 'c restarted');
    // c is stopped before b starts again; then b, then c, in start order.
    assert.equal(events, ['exit:b', 'stopped:c', 'up:b', 'restarted:b', 'up:c', 'restarted:c']);
    assert.equal(
      sup.info().map((c) => c.restarts),
      [0, 1, 1],
    );
    assert.ok(infoOf(sup, 'b').startedAt! <= infoOf(sup, 'c').startedAt!);
  });
});

test('rest_for_one on the last child restarts only that child', async () => {
  await withSupervisor(three('rest_for_one'), async (sup) => {
    const before = threadIds(sup);
    const events = recordEvents(sup);
    const restarted = nextEvent(sup, 'child:restarted', 'c');
    await crash(sup, 'c');
    await restarted;
    const after = threadIds(sup);
    assert.is(after.a, before.a);
    assert.is(after.b, before.b);
    assert.equal(events, ['exit:c', 'up:c', 'restarted:c']);
  });
});

test('one_for_all stops the others in reverse order and restarts every child in order', async () => {
  await withSupervisor(three('one_for_all'), async (sup) => {
    const before = threadIds(sup);
    const events = recordEvents(sup);
    const last = nextEvent(sup, 'child:restarted', 'c');
    await crash(sup, 'b');
    await last;
    const after = threadIds(sup);
    for (const n of ['a', 'b', 'c']) {
      assert.ok(after[n] !== null && after[n] !== before[n], `${n} restarted`);
    }
    assert.equal(events, [
      'exit:b',
      'stopped:c',
      'stopped:a',
      'up:a',
      'restarted:a',
      'up:b',
      'restarted:b',
      'up:c',
      'restarted:c',
    ]);
  });
});

test('permanent: restarted even after a normal exit', async () => {
  await withSupervisor({ children: [probe('p', { restart: 'permanent' })] }, async (sup) => {
    const before = threadIds(sup).p;
    const exited = nextEvent<{ name: string; code: number; abnormal: boolean }>(
      sup,
      'child:exit',
      'p',
    );
    const restarted = nextEvent(sup, 'child:restarted', 'p');
    await exitNormally(sup, 'p');
    const exit = await exited;
    assert.is(exit.code, 0);
    assert.is(exit.abnormal, false);
    await restarted;
    assert.ok(threadIds(sup).p !== before);
    assert.is(await sup.ask('p', 'ping'), 'pong');
  });
});

test('transient: not restarted after a normal exit; asks to it then reject ERR_ACTOR_EXITED', async () => {
  await withSupervisor(
    { children: [probe('t', { restart: 'transient' }), probe('other')] },
    async (sup) => {
      const events = recordEvents(sup);
      await exitNormally(sup, 't');
      await until(() => infoOf(sup, 't').state === 'stopped', 2000, 't stopped');
      const t = infoOf(sup, 't');
      assert.is(t.threadId, null);
      assert.is(t.restarts, 0);
      assert.is(t.lastExit?.code, 0);
      assert.is(t.lastExit?.abnormal, false);
      await rejectsWith(sup.ask('t', 'ping', undefined, { timeoutMs: 1000 }), 'ERR_ACTOR_EXITED');
      await sleep(100);
      assert.equal(events, ['exit:t'], 'no restart follows');
      assert.is(await sup.ask('other', 'ping'), 'pong');
    },
  );
});

test('transient: restarted after a crash', async () => {
  await withSupervisor({ children: [probe('t', { restart: 'transient' })] }, async (sup) => {
    const before = threadIds(sup).t;
    const restarted = nextEvent(sup, 'child:restarted', 't');
    await crash(sup, 't', 'exit');
    await restarted;
    assert.ok(threadIds(sup).t !== before);
    assert.is(infoOf(sup, 't').lastExit?.abnormal, true);
    assert.is(await sup.ask('t', 'ping'), 'pong');
  });
});

test('temporary: never restarted; asks to it, from admin and from a neighbour, reject ERR_ACTOR_EXITED', async () => {
  await withSupervisor(
    {
      children: [probe('tmp', { restart: 'temporary' }, ['n']), probe('n', {}, ['tmp'])],
      topology: [['tmp', 'n']],
    },
    async (sup) => {
      const events = recordEvents(sup);
      await crash(sup, 'tmp');
      await until(() => infoOf(sup, 'tmp').state === 'stopped', 2000, 'tmp stopped');
      await rejectsWith(sup.ask('tmp', 'ping', undefined, { timeoutMs: 1000 }), 'ERR_ACTOR_EXITED');
      await rejectsWith(
        sup.ask('n', 'forward', { to: 'tmp', action: 'ping', timeoutMs: 1000 }),
        'ERR_ACTOR_EXITED',
      );
      await sleep(100);
      assert.equal(events, ['exit:tmp']);
      assert.is(infoOf(sup, 'tmp').restarts, 0);
    },
  );
});

for (const strategy of ['one_for_all', 'rest_for_one']) {
  test(`temporary sibling stopped by a ${strategy} restart is not restarted, and asks to it reject ERR_ACTOR_EXITED`, async () => {
    await withSupervisor(
      { strategy, children: [probe('a'), probe('tmp', { restart: 'temporary' })] },
      async (sup) => {
        const events = recordEvents(sup);
        const restarted = nextEvent(sup, 'child:restarted', 'a');
        await crash(sup, 'a');
        await restarted;
        await sleep(100);
        assert.equal(events, ['exit:a', 'stopped:tmp', 'up:a', 'restarted:a']);
        assert.is(infoOf(sup, 'tmp').threadId, null);
        // No instance will follow: the ask must fail now, not wait for its timeout.
        await rejectsWith(
          sup.ask('tmp', 'ping', undefined, { timeoutMs: 1000 }),
          'ERR_ACTOR_EXITED',
        );
      },
    );
  });
}

test('intensity {maxRestarts: 2}: two crashes are restarted, the third stops everything and done is {code: 1}', async () => {
  const { logger, records } = memoryLogger();
  const sup = new Supervisor(
    {
      intensity: { maxRestarts: 2, periodMs: 10_000 },
      children: [probe('a'), probe('b')],
    },
    { logger },
  );
  await sup.start();
  try {
    const events = recordEvents(sup);
    for (let i = 1; i <= 2; i++) {
      const restarted = nextEvent(sup, 'child:restarted', 'a');
      await crash(sup, 'a');
      await restarted;
      assert.is(infoOf(sup, 'a').restarts, i);
    }
    const escalated = nextEvent(sup, 'escalate', 'a');
    await crash(sup, 'a');
    await escalated;
    const result = await sup.done;
    assert.is(result.code, 1);
    assert.equal(events, [
      'exit:a',
      'up:a',
      'restarted:a',
      'exit:a',
      'up:a',
      'restarted:a',
      'exit:a',
      'escalate:a',
      'stopped:b',
    ]);
    assert.is(infoOf(sup, 'a').restarts, 2, 'the third crash was not restarted');
    for (const c of sup.info()) {
      assert.is(c.threadId, null, `${c.name} has no worker left`);
      assert.ok(c.state !== 'running', `${c.name} is ${c.state}`);
    }
    assert.ok(
      records.some((r) => r.level === 60 && r.code === 'ERR_INTENSITY'),
      'a fatal ERR_INTENSITY record',
    );
    await rejectsWith(sup.ask('b', 'ping', undefined, { timeoutMs: 500 }), 'ERR_ACTOR_EXITED');
  } finally {
    await sup.stop('test over');
  }
});

test('intensity is shared by all children of the supervisor', async () => {
  await withSupervisor(
    { intensity: { maxRestarts: 1, periodMs: 10_000 }, children: [probe('a'), probe('b')] },
    async (sup) => {
      const restarted = nextEvent(sup, 'child:restarted', 'a');
      await crash(sup, 'a');
      await restarted;
      await crash(sup, 'b');
      assert.is((await sup.done).code, 1);
      assert.is(infoOf(sup, 'b').restarts, 0);
    },
  );
});

test('restarts older than periodMs no longer count toward intensity', async () => {
  await withSupervisor(
    { intensity: { maxRestarts: 1, periodMs: 300 }, children: [probe('a')] },
    async (sup) => {
      for (let i = 1; i <= 3; i++) {
        const restarted = nextEvent(sup, 'child:restarted', 'a');
        await crash(sup, 'a');
        await restarted;
        await sleep(350);
      }
      assert.is(infoOf(sup, 'a').restarts, 3);
      assert.is(await sup.ask('a', 'ping'), 'pong');
    },
  );
});

const pair = (aExtra = {}) => ({
  children: [probe('a', aExtra, ['b']), probe('b', {}, ['a'])],
  topology: [['a', 'b']],
});

test('re-wiring: after a restart a neighbour reaches the new instance, and the new instance reaches it', async () => {
  await withSupervisor(pair(), async (sup) => {
    const old = threadIds(sup).a;
    const viaB = (await sup.ask('b', 'forward', { to: 'a', action: 'whoami' })) as WhoAmI;
    assert.is(viaB.threadId, old);
    assert.is(viaB.from, 'b');

    const restarted = nextEvent(sup, 'child:restarted', 'a');
    await crash(sup, 'a');
    await restarted;
    const fresh = threadIds(sup).a;
    assert.ok(fresh !== old);
    const again = (await sup.ask('b', 'forward', { to: 'a', action: 'whoami' })) as WhoAmI;
    assert.is(again.threadId, fresh);
    assert.is(again.from, 'b');
    const back = (await sup.ask('a', 'forward', { to: 'b', action: 'whoami' })) as WhoAmI;
    assert.is(back.threadId, threadIds(sup).b);
    const links = (await sup.inspect('b')).links;
    assert.equal(
      links.find((l) => l.peer === 'a'),
      { peer: 'a', state: 'up', pending: 0, queued: 0 },
    );
  });
});

test('asks made while a child restarts (before its init finished) wait for and reach the new instance', async () => {
  await withSupervisor(pair({ options: { initDelayMs: 300 } }), async (sup) => {
    const old = threadIds(sup).a;
    const exited = nextEvent(sup, 'child:exit', 'a');
    const restarted = nextEvent(sup, 'child:restarted', 'a');
    await crash(sup, 'a');
    await exited;
    // The new instance is spawned and wired, its init (300 ms) still running.
    await until(() => infoOf(sup, 'a').state === 'starting', 1000, 'a starting again');
    // b handles control calls in order: once this answers, b holds the new channel.
    await sup.inspect('b');
    const fromAdmin = track(sup.ask('a', 'whoami'));
    const fromB = track(sup.ask('b', 'forward', { to: 'a', action: 'whoami' }));
    await restarted;
    const fresh = threadIds(sup).a;
    assert.ok(fresh !== old);
    // Init (300 ms) starts after the spawn: nothing is served before it ends.
    const initDone = infoOf(sup, 'a').startedAt! + 300;
    for (const r of [await fromAdmin, await fromB]) {
      assert.ok(r.ok, `rejected ${r.code}`);
      assert.is((r.value as WhoAmI).threadId, fresh);
      assert.ok(r.at >= initDone - 1, `answered ${initDone - r.at} ms before init finished`);
    }
  });
});

test('an init failure makes start() reject ERR_ACTOR_INIT; children already up are stopped; done is {code: 1}', async () => {
  const { logger } = memoryLogger();
  const sup = new Supervisor(
    { children: [probe('a'), probe('bad', { options: { failInit: true } }), probe('never')] },
    { logger },
  );
  const events = recordEvents(sup);
  await rejectsWith(sup.start(), 'ERR_ACTOR_INIT');
  assert.is((await sup.done).code, 1);
  assert.equal(events, ['up:a', 'stopped:a']);
  for (const c of sup.info()) assert.is(c.threadId, null, `${c.name} has no worker`);
  assert.is(infoOf(sup, 'never').state, 'idle', 'children after the failed one never start');
});

test('an init slower than initTimeoutMs is ERR_ACTOR_INIT', async () => {
  const { logger } = memoryLogger();
  const sup = new Supervisor(
    { children: [probe('slow', { initTimeoutMs: 200, options: { initDelayMs: 5000 } })] },
    { logger },
  );
  const t0 = Date.now();
  await rejectsWith(sup.start(), 'ERR_ACTOR_INIT');
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1500, `start() took ${elapsed} ms to give up on a 200 ms init timeout`);
  assert.is((await sup.done).code, 1);
  assert.is(infoOf(sup, 'slow').threadId, null);
});

test.run();
