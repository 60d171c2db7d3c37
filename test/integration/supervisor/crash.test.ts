/**
 * Every way a worker can die, with asks in flight to it from the operator
 * (admin) and from a neighbouring actor: every pending ask must settle with
 * ERR_ACTOR_EXITED within SETTLE_MS of the worker's exit (the supervisor's
 * 'child:exit' event and its `at`), and the actor must answer again once it
 * is restarted. The settle bound is the runtime's promise (endpoint.ts): the
 * dead worker's ports close and each endpoint rejects at once, without
 * waiting for the supervisor or for ask timeouts.
 */
import * as assert from 'uvu/assert';
import type { ExitInfo, Supervisor } from '../../../supervisor/supervisor.js';
import { infoOf, nextEvent, threadIds } from '../../helpers/observe.js';
import { track } from '../../helpers/runtime.js';
import type { Settled } from '../../helpers/runtime.js';
import { probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe, until } from '../../helpers/test.js';

const test = describe('supervisor/crash', 6000);

/** Pending asks settle within this many ms of the worker's exit. */
const SETTLE_MS = 50;
/** Asks per sender held open at the crashing actor. */
const N = 3;

type ExitEvent = ExitInfo & { name: string };

/** a (the one that dies) and b (its neighbour, which forwards asks to it). */
const pair = (aExtra: Parameters<typeof probe>[1] = {}) => ({
  children: [probe('a', aExtra, ['b']), probe('b', {}, ['a'])],
  topology: [['a', 'b']],
});

/** Hold N 'hang' asks at `a` from admin and N through b's 'forward'; resolve once all run. */
async function holdAsks(sup: Supervisor, n = N): Promise<Promise<Settled>[]> {
  const fromAdmin = Array.from({ length: n }, () => track(sup.ask('a', 'hang')));
  const fromB = Array.from({ length: n }, () =>
    track(sup.ask('b', 'forward', { to: 'a', action: 'hang' })),
  );
  await until(
    async () => (await sup.stats('a')).running === 2 * n,
    2000,
    `${2 * n} asks running at a`,
  );
  return [...fromAdmin, ...fromB];
}

/** Every ask settled ERR_ACTOR_EXITED, no later than SETTLE_MS after the exit. */
function assertSettledOnExit(settled: Settled[], exit: ExitEvent): void {
  settled.forEach((r, i) => {
    const who =
      i < settled.length / 2 ? `admin ask ${i}` : `forwarded ask ${i - settled.length / 2}`;
    assert.is(r.code, 'ERR_ACTOR_EXITED', `${who}: ${r.ok ? 'resolved' : r.code}`);
    const lag = r.at - exit.at;
    assert.ok(lag <= SETTLE_MS, `${who} settled ${lag} ms after the worker's exit`);
  });
}

/** The restarted actor answers, directly and through its neighbour. */
async function assertAnswersAgain(sup: Supervisor, oldThread: number | null): Promise<void> {
  const fresh = threadIds(sup).a;
  assert.ok(fresh !== null && fresh !== oldThread, 'a runs on a new thread');
  assert.is(await sup.ask('a', 'ping'), 'pong');
  assert.is(await sup.ask('b', 'forward', { to: 'a', action: 'ping' }), 'pong');
}

const CRASHES: Array<{
  kind: string;
  extra?: Parameters<typeof probe>[1];
  check: (exit: ExitEvent) => void;
}> = [
  { kind: 'throw', check: (e) => assert.is(e.code, 1) },
  { kind: 'reject', check: (e) => assert.is(e.code, 1) },
  { kind: 'exit', check: (e) => assert.is(e.code, 3) },
  {
    kind: 'oom',
    extra: { resourceLimits: { maxOldGenerationSizeMb: 32 } },
    check: (e) =>
      assert.ok(e.reason.startsWith('ERR_WORKER_OUT_OF_MEMORY'), `reason was ${e.reason}`),
  },
];

for (const { kind, extra, check } of CRASHES) {
  test(`crash '${kind}': pending asks from admin and from a neighbour settle ERR_ACTOR_EXITED within ${SETTLE_MS} ms of the exit; a answers after restart`, async () => {
    await withSupervisor(pair(extra), async (sup) => {
      const before = threadIds(sup);
      const pending = await holdAsks(sup);
      const exited = nextEvent<ExitEvent>(sup, 'child:exit', 'a');
      const restarted = nextEvent(sup, 'child:restarted', 'a');
      const crashAsk = track(sup.ask('a', 'crash', { kind }));
      const exit = await exited;
      assertSettledOnExit(await Promise.all(pending), exit);
      // The crash ask itself: its reply was sent before the crash, or it was in flight.
      const c = await crashAsk;
      if (c.ok) assert.is(c.value, 'crashing');
      else assert.is(c.code, 'ERR_ACTOR_EXITED');
      assert.ok(c.at - exit.at <= SETTLE_MS, `crash ask settled ${c.at - exit.at} ms after exit`);
      assert.is(sup.pendingAdminAsks, 0);
      assert.is(exit.abnormal, true);
      check(exit);
      await restarted;
      assert.is(infoOf(sup, 'a').restarts, 1);
      assert.is(threadIds(sup).b, before.b, 'the neighbour was not restarted');
      await assertAnswersAgain(sup, before.a!);
    });
  });
}

test(`terminate (sup.kill): pending asks from admin and from a neighbour settle ERR_ACTOR_EXITED within ${SETTLE_MS} ms of the exit; a answers after restart`, async () => {
  await withSupervisor(pair(), async (sup) => {
    const before = threadIds(sup);
    const pending = await holdAsks(sup);
    const exited = nextEvent<ExitEvent>(sup, 'child:exit', 'a');
    const restarted = nextEvent(sup, 'child:restarted', 'a');
    await sup.kill('a');
    const exit = await exited;
    assertSettledOnExit(await Promise.all(pending), exit);
    assert.is(sup.pendingAdminAsks, 0);
    assert.is(exit.reason, 'killed');
    assert.is(exit.abnormal, true);
    await restarted;
    assert.is(infoOf(sup, 'a').lastExit?.reason, 'killed');
    await assertAnswersAgain(sup, before.a!);
  });
});

test(`asks still queued in the dead actor's mailbox (not yet running) settle within ${SETTLE_MS} ms too`, async () => {
  await withSupervisor(pair({ mailbox: { concurrency: 1, highWater: 64 } }), async (sup) => {
    const before = threadIds(sup);
    const pending = [
      ...Array.from({ length: 4 }, () => track(sup.ask('a', 'hang'))),
      ...Array.from({ length: 4 }, () =>
        track(sup.ask('b', 'forward', { to: 'a', action: 'hang' })),
      ),
    ];
    await until(async () => (await sup.stats('a')).depth === 8, 2000, '8 asks in a mailbox');
    const stats = await sup.stats('a');
    assert.is(stats.running, 1, 'one runs, seven wait in the mailbox');
    const exited = nextEvent<ExitEvent>(sup, 'child:exit', 'a');
    const restarted = nextEvent(sup, 'child:restarted', 'a');
    await sup.kill('a');
    const exit = await exited;
    assertSettledOnExit(await Promise.all(pending), exit);
    assert.is(sup.pendingAdminAsks, 0);
    await restarted;
    await assertAnswersAgain(sup, before.a!);
  });
});

test('a busy-looping actor misses its heartbeat, is terminated (reason heartbeat) and restarted within intervalMs + timeoutMs + margin', async () => {
  const heartbeat = { intervalMs: 100, timeoutMs: 200 };
  /** Terminate and restart both wait on a worker thread; 2 loaded cores are slow at that. */
  const EXIT_MARGIN_MS = 200;
  const RESTART_MARGIN_MS = 500;
  await withSupervisor(pair({ heartbeat }), async (sup) => {
    const before = threadIds(sup);
    const pending = await holdAsks(sup);
    const exited = nextEvent<ExitEvent>(sup, 'child:exit', 'a');
    const restarted = nextEvent(sup, 'child:restarted', 'a');
    // The reply is sent before the loop starts (on the probe's next turn).
    assert.is(await sup.ask('a', 'crash', { kind: 'busy' }), 'crashing');
    const busySince = Date.now();
    const exit = await exited;
    assert.is(exit.reason, 'heartbeat');
    assert.is(exit.abnormal, true);
    const detect = exit.at - busySince;
    const budget = heartbeat.intervalMs + heartbeat.timeoutMs;
    assert.ok(detect <= budget + EXIT_MARGIN_MS, `terminated ${detect} ms after the loop began`);
    assertSettledOnExit(await Promise.all(pending), exit);
    assert.is(sup.pendingAdminAsks, 0);
    await restarted;
    const back = Date.now() - busySince;
    assert.ok(back <= budget + RESTART_MARGIN_MS, `restarted ${back} ms after the loop began`);
    assert.is(infoOf(sup, 'a').lastExit?.reason, 'heartbeat');
    assert.is(threadIds(sup).b, before.b);
    await assertAnswersAgain(sup, before.a!);
    assert.is(sup.pendingAdminAsks, 0);
  });
});

test('a healthy actor under the same tight heartbeat is not killed', async () => {
  await withSupervisor(pair({ heartbeat: { intervalMs: 50, timeoutMs: 200 } }), async (sup) => {
    const before = threadIds(sup).a;
    let exits = 0;
    sup.on('child:exit', () => exits++);
    // Keep it busy with real (short) work for a while.
    for (let i = 0; i < 20; i++) await sup.ask('a', 'slow', { ms: 20 });
    assert.is(exits, 0);
    assert.is(threadIds(sup).a, before);
  });
});

test.run();
