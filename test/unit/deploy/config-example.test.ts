import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../supervisor/config.js';
import { describe } from '../../helpers/test.js';

const test = describe('deploy/config example');
const EXAMPLE = fileURLToPath(new URL('../../../../deploy/meshnode.toml.example', import.meta.url));

/** Every leaf path of a plain object ("gossip.max_peers"); arrays are leaves. */
function leaves(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? leaves(v as Record<string, unknown>, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

test('the example parses and names every option with its default value', () => {
  const raw = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  const defaults = parseConfig({}) as unknown as Record<string, unknown>;
  // Not just valid: spelled out. An option added to the code without the example fails here.
  const missing = leaves(defaults).filter((p) => !leaves(raw).includes(p));
  assert.equal(
    missing,
    [],
    `options missing from deploy/meshnode.toml.example: ${missing.join(', ')}`,
  );
  assert.equal(parseConfig(raw), defaults);
});

test('the example names no option the code does not know', () => {
  const raw = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  const known = leaves(parseConfig({}) as unknown as Record<string, unknown>);
  const unknown = leaves(raw).filter((p) => !known.includes(p));
  assert.equal(unknown, []);
});

test.run();
