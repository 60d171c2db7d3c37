/**
 * The consumer's activations file (actors/grants/activations.ts): one
 * record per subscription, kept across restarts, replaced atomically, 0600.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Activations } from '../../../actors/grants/activations.js';
import type { Activation } from '../../../actors/grants/activations.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('grants/activations');

const provider = keyOf(1).did;

function activation(n: number, extra: Partial<Activation> = {}): Activation {
  return {
    subscription: fakeId(n),
    provider,
    service: 'web',
    endpoint: { ip: '10.99.0.1', port: 443, proto: 'tcp' },
    expires: 1_700_000_600_000 + n,
    grant: fakeId(1000 + n),
    at: 1_700_000_000_000,
    ...extra,
  };
}

const fileIn = (): string => join(tempDir('meshnode-activations-'), 'activations.json');

test('a fresh file has no activations and is not created until the first put', () => {
  const path = fileIn();
  const a = new Activations(path);
  assert.equal(a.all(), []);
  assert.not.ok(existsSync(path));
});

test('put keeps activations across a reopen (a restart)', () => {
  const path = fileIn();
  const a = new Activations(path);
  a.put(activation(1));
  a.put(activation(2));
  const again = new Activations(path);
  assert.equal(
    again.all().sort((x, y) => x.subscription.localeCompare(y.subscription)),
    [activation(1), activation(2)],
  );
});

test('one record per subscription: a renewal replaces the old one', () => {
  const path = fileIn();
  const a = new Activations(path);
  a.put(activation(1));
  const renewed = activation(1, { expires: 1_700_009_999_000, grant: fakeId(77) });
  a.put(renewed);
  assert.equal(a.all(), [renewed]);
  assert.equal(new Activations(path).all(), [renewed]);
});

test('the file is 0600 and no temporary file is left beside it', () => {
  const path = fileIn();
  new Activations(path).put(activation(1));
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.equal(readdirSync(join(path, '..')), ['activations.json']);
});

test('the file is plain JSON: an array of the activations', () => {
  const path = fileIn();
  new Activations(path).put(activation(3));
  assert.equal(JSON.parse(readFileSync(path, 'utf8')), [activation(3)]);
});

test('a stale temporary file from a crash mid-write is ignored and replaced', () => {
  const path = fileIn();
  new Activations(path).put(activation(1));
  // The crash: a half-written temp file beside the good one.
  writeFileSync(`${path}.tmp`, '[{"subscription":');
  const a = new Activations(path);
  assert.equal(a.all(), [activation(1)], 'the last complete file is what is read');
  a.put(activation(2));
  assert.is(new Activations(path).all().length, 2);
  assert.not.ok(existsSync(`${path}.tmp`));
});

test.run();
