/**
 * The warm spare: a worker with the runtime loaded and no actor, handed to
 * the next restart so it skips thread start-up.
 */
import * as assert from 'uvu/assert';
import { probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe, until } from '../../helpers/test.js';

const test = describe('supervisor/spare', 20_000);

async function crashAndWait(
  sup: import('../../../supervisor/supervisor.js').Supervisor,
  name: string,
) {
  const up = new Promise((resolve) => sup.once('child:up', resolve));
  sup.tell(name, 'crash', { kind: 'throw' });
  await up;
}

test('after_restart: no spare until the first restart, then the next restart runs on the spare thread', async () => {
  await withSupervisor({ children: [probe('a')] }, async (sup) => {
    assert.is(sup.spareThreadId, null, 'a node that never restarted keeps no spare');
    await crashAndWait(sup, 'a');
    await until(() => sup.spareThreadId !== null, 5000, 'spare started');
    const spare = sup.spareThreadId;
    await crashAndWait(sup, 'a');
    assert.is(sup.info()[0]!.threadId, spare, 'the restarted actor runs on the spare');
    assert.is(await sup.ask('a', 'ping'), 'pong');
    await until(
      () => sup.spareThreadId !== null && sup.spareThreadId !== spare,
      5000,
      'spare refilled',
    );
  });
});

test('a spare is only used by a child with the same resourceLimits', async () => {
  await withSupervisor(
    {
      children: [probe('a'), probe('big', { resourceLimits: { maxOldGenerationSizeMb: 96 } })],
    },
    async (sup) => {
      await crashAndWait(sup, 'a');
      await until(() => sup.spareThreadId !== null, 5000, 'spare started');
      const spare = sup.spareThreadId;
      await crashAndWait(sup, 'big');
      assert.is.not(sup.info()[1]!.threadId, spare, 'different limits: a cold worker');
      assert.is(await sup.ask('big', 'ping'), 'pong');
    },
  );
});

test('never: no spare is kept even after restarts', async () => {
  await withSupervisor({ spareWorker: 'never', children: [probe('a')] }, async (sup) => {
    await crashAndWait(sup, 'a');
    await new Promise((r) => setTimeout(r, 200));
    assert.is(sup.spareThreadId, null);
  });
});

test('always: a spare exists from start, and stop() leaves no spare behind', async () => {
  let seen: number | null = null;
  await withSupervisor({ spareWorker: 'always', children: [probe('a')] }, async (sup) => {
    seen = sup.spareThreadId;
  });
  assert.type(seen, 'number');
});

test.run();
