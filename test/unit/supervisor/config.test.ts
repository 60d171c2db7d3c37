import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import {
  BUILTIN_ACTORS,
  loadConfig,
  parseConfig,
  supervisorInput,
} from '../../../supervisor/config.js';
import { parseSupervisorOptions } from '../../../supervisor/child-spec.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('supervisor/config');

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a throw');
}

test('the embedded defaults run the four built-in actors on loopback with state in ./var', () => {
  const config = loadConfig();
  assert.is(config.node.state_dir, './var');
  assert.is(config.metrics.listen, '127.0.0.1:9464');
  const sup = parseSupervisorOptions(supervisorInput(config));
  assert.equal(
    sup.children.map((c) => c.name),
    [...BUILTIN_ACTORS],
  );
  assert.is(sup.strategy, 'one_for_one');
  assert.equal(sup.intensity, { maxRestarts: 5, periodMs: 10_000 });
});

test('the topology gives channels only to the pairs DESIGN allows', () => {
  const sup = parseSupervisorOptions(supervisorInput(loadConfig()));
  const pairs = sup.topology.map((p) => [...p].sort().join('-')).sort();
  assert.equal(pairs, ['gossip-grants', 'gossip-journal', 'grants-journal', 'grants-nft']);
});

test('a TOML file overrides defaults and tunes an actor', () => {
  const dir = tempDir();
  const path = join(dir, 'm.toml');
  writeFileSync(
    path,
    '[supervisor]\nstrategy = "rest_for_one"\nmax_restarts = 2\n[actors.journal]\nshutdown_ms = 9000\nmax_old_generation_mb = 64\n',
  );
  const sup = parseSupervisorOptions(supervisorInput(loadConfig(path)));
  assert.is(sup.strategy, 'rest_for_one');
  assert.is(sup.intensity.maxRestarts, 2);
  const journal = sup.children.find((c) => c.name === 'journal')!;
  assert.is(journal.shutdownMs, 9000);
  assert.is(journal.resourceLimits.maxOldGenerationSizeMb, 64);
});

test('each bad field is refused with ERR_INVALID_OPTION naming it', () => {
  const cases: Array<[unknown, string]> = [
    [{ supervisor: { max_restarts: -1 } }, 'config.supervisor.max_restarts'],
    [{ supervisor: { strategy: 'one_for_some' } }, 'config.supervisor.strategy'],
    [{ node: { log_level: 'loud' } }, 'config.node.log_level'],
    [{ actors: { journal: { shutdown_ms: 'soon' } } }, 'config.actors.journal.shutdown_ms'],
    [{ actors: { extra: [{ name: 'Bad Name', module: 'x.js' }] } }, 'config.actors.extra[0].name'],
    [{ nodes: {} }, 'config'],
  ];
  for (const [data, field] of cases) {
    const err = codeOf(() => parseConfig(data));
    assert.is(err.code, 'ERR_INVALID_OPTION', `tried ${JSON.stringify(data)}`);
    assert.ok(err.message.startsWith(field), `${err.message} should name ${field}`);
  }
});

test('an unreadable or non-TOML file is ERR_INVALID_CONFIG', () => {
  const dir = tempDir();
  assert.is(codeOf(() => loadConfig(join(dir, 'missing.toml'))).code, 'ERR_INVALID_CONFIG');
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[node\nstate_dir = ');
  assert.is(codeOf(() => loadConfig(bad)).code, 'ERR_INVALID_CONFIG');
});

test('extra actors join the topology through their links', () => {
  const config = parseConfig({
    actors: { extra: [{ name: 'probe', module: '/x.js', links: ['journal'] }] },
  });
  const input = supervisorInput(config);
  assert.ok(input.topology!.some(([a, b]) => a === 'probe' && b === 'journal'));
  assert.is(input.children.at(-1)!.name, 'probe');
});

test.run();
