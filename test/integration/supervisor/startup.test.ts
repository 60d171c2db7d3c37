/**
 * Configuration that was accepted and then broke or hung the node: each is
 * now refused at start with a non-zero exit and a message that names the
 * field, and the process is gone (it used to spin, or stay up serving
 * `status` with its actors stopped).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { cli } from '../../helpers/meshnode.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('supervisor/startup', 30_000);

type Sections = Record<string, Record<string, string | number>>;

/** A config for a quiet node in a fresh directory, with `extra` keys merged into its sections. */
function configWith(extra: Sections): string {
  const dir = tempDir();
  const path = join(dir, 'meshnode.toml');
  const sections: Sections = {
    node: { state_dir: join(dir, 'state') },
    gossip: { listen: '' },
    metrics: { listen: '' },
    nft: { backend: 'memory' },
  };
  for (const [name, keys] of Object.entries(extra)) sections[name] = { ...sections[name], ...keys };
  const toml = Object.entries(sections).flatMap(([name, keys]) => [
    `[${name}]`,
    ...Object.entries(keys).map(([k, v]) => `${k} = ${typeof v === 'string' ? `"${v}"` : v}`),
  ]);
  writeFileSync(path, toml.join('\n') + '\n');
  return path;
}

const cases: Array<[string, Sections, RegExp]> = [
  ['admin.socket under /proc', { admin: { socket: '/proc/x/admin.sock' } }, /admin\.socket/],
  ['an admin.group that does not exist', { admin: { group: 'nosuchgroup' } }, /admin\.group/],
  [
    'a metrics.listen that is no address',
    { metrics: { listen: 'not an address' } },
    /metrics\.listen/,
  ],
  ['a timer past what Node can run', { grants: { sweep_ms: 3_000_000_000 } }, /grants\.sweep_ms/],
  [
    'an anti-entropy period of 2^53-1 ms',
    { gossip: { anti_entropy_ms: 9007199254740991 } },
    /gossip\.anti_entropy_ms/,
  ],
];

for (const [what, extra, field] of cases) {
  test(`start refuses ${what}: exit 2 (an invalid config, as every command), the field named on stderr, the process gone`, async () => {
    const path = configWith(extra);
    const t0 = Date.now();
    const r = await cli(['start', '--config', path], 20_000);
    assert.is(r.code, 2, `exit code (output: ${(r.stderr + r.stdout).slice(-600)})`);
    assert.match(r.stderr, field);
    assert.match(r.stderr, /^meshnode: ERR_INVALID_CONFIG: /);
    assert.ok(Date.now() - t0 < 15_000, 'exits promptly');
  });
}

test.run();
