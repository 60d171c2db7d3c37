import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as assert from 'uvu/assert';
import { parseSupervisorOptions } from '../../../supervisor/child-spec.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/child-spec', 2000);

const child = (extra: Record<string, unknown> = {}) => ({ name: 'a', module: 'x.js', ...extra });
const withChild = (extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}) => ({
  children: [child(extra)],
  ...top,
});

/** Parse must fail with ERR_INVALID_OPTION, its message naming `path` (and each of `also`). */
function rejects(input: unknown, path: string, ...also: string[]): void {
  try {
    parseSupervisorOptions(input);
  } catch (err) {
    const e = err as { code?: string; message: string };
    assert.is(e.code, 'ERR_INVALID_OPTION', `${path}: ${e.message}`);
    // The field path is the contract operators read: `<path> <expectation>`.
    assert.ok(
      e.message.startsWith(`${path} `),
      `expected the message to name ${path}, got: ${e.message}`,
    );
    for (const a of also) assert.ok(e.message.includes(a), `expected ${a} in: ${e.message}`);
    return;
  }
  assert.unreachable(`expected ${path} to be rejected`);
}

test('defaults are merged into a minimal spec', () => {
  const o = parseSupervisorOptions({ children: [child()] });
  assert.is(o.strategy, 'one_for_one');
  assert.equal(o.intensity, { maxRestarts: 5, periodMs: 10_000 });
  assert.equal(o.topology, []);
  assert.is(o.logLevel, 'info');
  assert.equal(o.children[0], {
    name: 'a',
    module: 'x.js',
    restart: 'permanent',
    shutdownMs: 5000,
    initTimeoutMs: 10_000,
    askTimeoutMs: 5000,
    mailbox: { highWater: 1024, concurrency: 1 },
    heartbeat: { intervalMs: 1000, timeoutMs: 2000 },
    resourceLimits: { maxOldGenerationSizeMb: 256 },
    options: {},
    moduleUrl: pathToFileURL(resolve('x.js')).href,
  });
});

test('a partial nested table keeps the defaults of its other fields', () => {
  const o = parseSupervisorOptions(
    withChild(
      {
        mailbox: { highWater: 4 },
        heartbeat: { timeoutMs: 200 },
        resourceLimits: { stackSizeMb: 4 },
      },
      { intensity: { maxRestarts: 0 } },
    ),
  );
  const c = o.children[0]!;
  assert.equal(c.mailbox, { highWater: 4, concurrency: 1 });
  assert.equal(c.heartbeat, { intervalMs: 1000, timeoutMs: 200 });
  assert.equal(c.resourceLimits, { maxOldGenerationSizeMb: 256, stackSizeMb: 4 });
  assert.equal(o.intensity, { maxRestarts: 0, periodMs: 10_000 });
});

test('given values are kept; module paths and file: URLs become module URLs', () => {
  const o = parseSupervisorOptions({
    strategy: 'rest_for_one',
    logLevel: 'warn',
    children: [
      child({ restart: 'temporary', shutdownMs: 0, options: { peers: ['b'] } }),
      { name: 'b', module: 'file:///opt/b.js', restart: 'transient' },
      { name: 'c', module: '/abs/c.js' },
    ],
    topology: [['a', 'b']],
  });
  assert.is(o.strategy, 'rest_for_one');
  assert.is(o.logLevel, 'warn');
  assert.is(o.children[0]!.restart, 'temporary');
  assert.is(o.children[0]!.shutdownMs, 0, 'shutdownMs 0 (kill at once) is allowed');
  assert.equal(o.children[0]!.options, { peers: ['b'] });
  assert.is(o.children[1]!.moduleUrl, 'file:///opt/b.js');
  assert.is(o.children[2]!.moduleUrl, 'file:///abs/c.js');
  assert.equal(o.topology, [['a', 'b']]);
});

test('each invalid child field is ERR_INVALID_OPTION naming its path', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ name: 'A' }, 'options.children[0].name'],
    [{ name: '1abc' }, 'options.children[0].name'],
    [{ name: 'a'.repeat(33) }, 'options.children[0].name'],
    [{ name: 123 }, 'options.children[0].name'],
    [{ module: '' }, 'options.children[0].module'],
    [{ module: 42 }, 'options.children[0].module'],
    [{ restart: 'sometimes' }, 'options.children[0].restart'],
    [{ shutdownMs: -1 }, 'options.children[0].shutdownMs'],
    [{ shutdownMs: 1.5 }, 'options.children[0].shutdownMs'],
    [{ initTimeoutMs: 0 }, 'options.children[0].initTimeoutMs'],
    [{ askTimeoutMs: '5s' }, 'options.children[0].askTimeoutMs'],
    [{ mailbox: { highWater: 0 } }, 'options.children[0].mailbox.highWater'],
    [{ mailbox: { concurrency: -2 } }, 'options.children[0].mailbox.concurrency'],
    [{ mailbox: 8 }, 'options.children[0].mailbox'],
    [{ heartbeat: { intervalMs: 0 } }, 'options.children[0].heartbeat.intervalMs'],
    [{ heartbeat: { timeoutMs: 2.5 } }, 'options.children[0].heartbeat.timeoutMs'],
    [
      { resourceLimits: { maxOldGenerationSizeMb: 0 } },
      'options.children[0].resourceLimits.maxOldGenerationSizeMb',
    ],
    [{ resourceLimits: { stackSizeMb: -1 } }, 'options.children[0].resourceLimits.stackSizeMb'],
    [{ options: 'x' }, 'options.children[0].options'],
  ];
  for (const [extra, path] of cases) rejects(withChild(extra), path);
});

test('a missing required field names its path', () => {
  rejects({ children: [{ name: 'a' }] }, 'options.children[0].module');
  rejects({ children: [{ module: 'x.js' }] }, 'options.children[0].name');
  rejects({}, 'options.children');
});

test('the path names the right element of the children list', () => {
  rejects(
    { children: [child(), { name: 'b', module: 'b.js', restart: 'always' }] },
    'options.children[1].restart',
  );
});

test('each invalid supervisor field is ERR_INVALID_OPTION naming its path', () => {
  rejects(withChild({}, { strategy: 'one_for_some' }), 'options.strategy');
  rejects(withChild({}, { intensity: { maxRestarts: -1 } }), 'options.intensity.maxRestarts');
  rejects(withChild({}, { intensity: { periodMs: 0 } }), 'options.intensity.periodMs');
  rejects(withChild({}, { logLevel: 'loud' }), 'options.logLevel');
  rejects({ children: 'a,b' }, 'options.children');
  rejects(withChild({}, { topology: 'a-b' }), 'options.topology');
  rejects(withChild({}, { topology: [['a']] }), 'options.topology[0]');
  rejects(withChild({}, { topology: [['a', 'B']] }), 'options.topology[0][1]');
});

test('unknown keys are refused at every level, naming the object and the key', () => {
  rejects(withChild({}, { bogus: 1 }), 'options', 'bogus');
  rejects(withChild({ restartt: 'permanent' }), 'options.children[0]', 'restartt');
  rejects(withChild({ mailbox: { highwater: 4 } }), 'options.children[0].mailbox', 'highwater');
  rejects(withChild({ heartbeat: { every: 4 } }), 'options.children[0].heartbeat', 'every');
  rejects(
    withChild({ resourceLimits: { heapMb: 4 } }),
    'options.children[0].resourceLimits',
    'heapMb',
  );
  rejects(withChild({}, { intensity: { max: 4 } }), 'options.intensity', 'max');
});

test('an actor options table is free-form (its own schema validates it)', () => {
  const o = parseSupervisorOptions(withChild({ options: { anything: { goes: [1] } } }));
  assert.equal(o.children[0]!.options, { anything: { goes: [1] } });
});

test('duplicate child names are refused, naming the second one', () => {
  rejects(
    { children: [child(), { name: 'b', module: 'b.js' }, { name: 'a', module: 'y.js' }] },
    'options.children[2].name',
  );
});

test('a child may not be named "admin" (the operator endpoint)', () => {
  rejects({ children: [{ name: 'admin', module: 'x.js' }] }, 'options.children[0].name');
});

test('topology may only name known children, and must join two different ones', () => {
  const two = { children: [child(), { name: 'b', module: 'b.js' }] };
  rejects(
    {
      ...two,
      topology: [
        ['a', 'b'],
        ['b', 'zz'],
      ],
    },
    'options.topology[1]',
    'zz',
  );
  rejects({ ...two, topology: [['ghost', 'a']] }, 'options.topology[0]', 'ghost');
  rejects({ ...two, topology: [['a', 'a']] }, 'options.topology[0]');
  rejects({ ...two, topology: [['a', 'admin']] }, 'options.topology[0]', 'admin');
});

test('input that is not an object is refused', () => {
  for (const input of [null, undefined, 'children', 42, []]) rejects(input, 'options');
});

test.run();
