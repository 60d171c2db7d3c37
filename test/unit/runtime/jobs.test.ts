import * as assert from 'uvu/assert';
import { Jobs } from '../../../runtime/jobs.js';
import type { JobWork } from '../../../runtime/jobs.js';
import { E } from '../../../runtime/errors.js';
import { describe, rejectsWith, sleep, until } from '../../helpers/test.js';

const test = describe('runtime/jobs');

/** Work that counts to `n`, a step per tick, until aborted. */
const counting =
  (n: number, result: unknown = 'counted'): JobWork =>
  async (signal, progress) => {
    for (let i = 1; i <= n; i++) {
      if (signal.aborted) throw signal.reason;
      progress(i, n);
      await sleep(5);
    }
    return result;
  };

test('a job answers at once, shows its progress, and ends done with its result', async () => {
  const jobs = new Jobs();
  const started = jobs.start('verify', counting(20, { ok: true }));
  assert.is(started.state, 'running');
  await until(() => jobs.status(started.id).done > 0, 5_000, 'progress');
  await until(() => jobs.status(started.id).state !== 'running', 5_000, 'end');
  const end = jobs.status(started.id);
  assert.equal([end.state, end.done, end.total, end.result], ['done', 20, 20, { ok: true }]);
  assert.ok(end.elapsedMs > 0);
});

test('a second start of the same kind while one runs is that job; another kind is its own', () => {
  const jobs = new Jobs();
  const a = jobs.start('verify', counting(1000));
  assert.is(jobs.start('verify', counting(1)).id, a.id);
  assert.is.not(jobs.start('other', counting(1)).id, a.id);
  jobs.cancelAll();
});

test('cancel ends it cancelled with ERR_CANCELLED; an unknown id is ERR_NOT_FOUND', async () => {
  const jobs = new Jobs();
  const a = jobs.start('verify', counting(1000));
  jobs.cancel(a.id);
  await until(() => jobs.status(a.id).state !== 'running', 5_000, 'stopped');
  const end = jobs.status(a.id);
  assert.is(end.state, 'cancelled');
  assert.is(end.error?.code, 'ERR_CANCELLED');
  assert.ok(end.done < 1000);
  await rejectsWith(
    Promise.resolve().then(() => jobs.status('nope')),
    'ERR_NOT_FOUND',
  );
});

test('work that throws ends failed with its code', async () => {
  const jobs = new Jobs();
  const a = jobs.start('verify', () => Promise.reject(E.ERR_STORAGE_FULL('disk')));
  await until(() => jobs.status(a.id).state !== 'running', 5_000, 'end');
  assert.equal(jobs.status(a.id).error, { code: 'ERR_STORAGE_FULL', message: 'disk' });
});

test('a job nobody asks about is cancelled as an orphan; one that is followed is not', async () => {
  const jobs = new Jobs(300);
  const orphan = jobs.start('a', counting(10_000));
  const followed = jobs.start('b', counting(10_000));
  const t0 = Date.now();
  while (Date.now() - t0 < 1_000) {
    jobs.status(followed.id);
    await sleep(50);
  }
  // Looked at only now: it had been left alone for over 300 ms.
  const o = jobs.status(orphan.id);
  assert.is(o.state, 'cancelled');
  assert.match(o.error!.message, /nobody asked/);
  assert.is(jobs.status(followed.id).state, 'running');
  jobs.cancelAll();
});

test.run();
