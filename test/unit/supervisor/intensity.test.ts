import * as assert from 'uvu/assert';
import { recordRestart } from '../../../supervisor/intensity.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/intensity');
const limit = { maxRestarts: 5, periodMs: 10_000 };

test('allows exactly maxRestarts restarts inside the period, the next one exceeds', () => {
  let history: number[] = [];
  for (let i = 1; i <= 5; i++) {
    const v = recordRestart(history, i * 100, limit);
    assert.is(v.exceeded, false, `restart ${i} must be allowed`);
    history = v.history;
  }
  const sixth = recordRestart(history, 600, limit);
  assert.is(sixth.exceeded, true);
  assert.is(sixth.history.length, 6);
});

test('restarts older than the period no longer count', () => {
  let history: number[] = [];
  for (let i = 0; i < 5; i++) history = recordRestart(history, i, limit).history;
  // 10 s after the first restart, it has left the window.
  const v = recordRestart(history, 10_000, limit);
  assert.is(v.exceeded, false);
  assert.equal(v.history, [1, 2, 3, 4, 10_000]);
});

test('maxRestarts 0 means the first failure escalates', () => {
  assert.is(recordRestart([], 0, { maxRestarts: 0, periodMs: 1000 }).exceeded, true);
});

test('does not mutate the history it is given', () => {
  const history = [1, 2];
  recordRestart(history, 3, limit);
  assert.equal(history, [1, 2]);
});

test.run();
