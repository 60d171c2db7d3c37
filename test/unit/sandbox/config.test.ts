/**
 * The [sandbox] and [[policy]] config sections: defaults, validation that
 * names the field, and the grants actor's options built from them.
 */
import { resolve } from 'node:path';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../supervisor/config.js';
import { supervisorInput } from '../../../supervisor/config-specs.js';
import { describe } from '../../helpers/test.js';

const test = describe('sandbox/config', 2000);

const grantsOptions = (data: Record<string, unknown>) =>
  supervisorInput(parseConfig(data)).children.find((c) => c.name === 'grants')!.options as {
    sandbox: {
      threads: number;
      limits: Record<string, number>;
      stateDir: string;
      policies: Array<{ name: string; module: string; limits: Record<string, number> }>;
    };
  };

function fails(data: Record<string, unknown>, field: RegExp): void {
  try {
    parseConfig(data);
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_INVALID_CONFIG');
    assert.match((err as Error).message, field);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(data)}`);
}

test('defaults: one thread, 32 MiB, 100 ms, no policy', () => {
  const c = parseConfig({});
  assert.equal(c.sandbox, {
    threads: 1,
    memory_mb: 32,
    deadline_ms: 100,
    max_output_bytes: 65_536,
    max_state_bytes: 1_048_576,
    inbox: 64,
  });
  assert.equal(c.policy, []);
  const o = grantsOptions({ node: { state_dir: '/var/lib/meshnode' } }).sandbox;
  assert.equal(o.policies, []);
  assert.is(o.stateDir, '/var/lib/meshnode/sandbox');
  assert.equal(o.limits, {
    memoryBytes: 32 * 1024 * 1024,
    deadlineMs: 100,
    maxOutputBytes: 65_536,
    maxStateBytes: 1_048_576,
    inbox: 64,
  });
});

test('policies reach the grants actor in order, modules resolved, their own limits only', () => {
  const o = grantsOptions({
    sandbox: { threads: 2, deadline_ms: 50 },
    policy: [
      { name: 'guests', module: 'policies/guests.js', deadline_ms: 20, memory_mb: 8 },
      { name: 'office-hours', module: '/etc/meshnode/hours.js' },
    ],
  }).sandbox;
  assert.is(o.threads, 2);
  assert.is(o.limits.deadlineMs, 50);
  assert.equal(o.policies, [
    {
      name: 'guests',
      module: resolve('policies/guests.js'),
      limits: { memoryBytes: 8 * 1024 * 1024, deadlineMs: 20 },
    },
    { name: 'office-hours', module: '/etc/meshnode/hours.js', limits: {} },
  ]);
});

test('invalid values name the field', () => {
  fails({ sandbox: { threads: 0 } }, /config\.sandbox\.threads/);
  fails({ sandbox: { memory_mb: 4096 } }, /config\.sandbox\.memory_mb must be at most 1024/);
  fails({ sandbox: { deadline_ms: -1 } }, /config\.sandbox\.deadline_ms/);
  fails({ sandbox: { unknown: 1 } }, /config\.sandbox/);
  fails({ policy: [{ name: 'Guests', module: 'x.js' }] }, /config\.policy\[0\]\.name/);
  fails({ policy: [{ name: 'guests' }] }, /config\.policy\[0\]\.module/);
  fails({ policy: [{ name: 'guests', module: '' }] }, /config\.policy\[0\]\.module/);
  fails(
    {
      policy: [
        { name: 'guests', module: 'a.js' },
        { name: 'guests', module: 'b.js' },
      ],
    },
    /config\.policy must not name a policy twice/,
  );
});

test.run();
