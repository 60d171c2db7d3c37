import * as assert from 'uvu/assert';
import { SerialLane } from '../../../runtime/serial-lane.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/serial-lane', 2000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('jobs run one at a time in the order they were put on, whatever their durations', async () => {
  const lane = new SerialLane();
  const log: string[] = [];
  let running = 0;
  const job = (name: string, ms: number) => async () => {
    running++;
    assert.is(running, 1, `${name} ran alone`);
    log.push(`${name}+`);
    await sleep(ms);
    log.push(`${name}-`);
    running--;
    return name;
  };
  const results = await Promise.all([
    lane.run(job('a', 20)),
    lane.run(job('b', 1)),
    lane.run(job('c', 5)),
  ]);
  assert.equal(results, ['a', 'b', 'c']);
  assert.equal(log, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  assert.is(lane.tickets, 3);
});

test("a job's failure is its caller's; the lane goes on, and idle() never rejects", async () => {
  const lane = new SerialLane();
  const failed = lane.run(async () => {
    throw new Error('disk full');
  });
  const next = lane.run(() => 'after');
  await assert.not.throws(() => lane.idle());
  await failed.then(
    () => assert.unreachable('the failing job resolved'),
    (err: Error) => assert.is(err.message, 'disk full'),
  );
  assert.is(await next, 'after');
  await lane.idle();
});

test.run();
