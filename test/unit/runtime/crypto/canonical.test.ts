import { readdirSync, readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import * as assert from 'uvu/assert';
import { MeshError } from '../../../../runtime/errors.js';
import {
  assertJournalValue,
  canonicalBytes,
  canonicalize,
  MAX_JOURNAL_DEPTH,
} from '../../../../runtime/crypto/canonical.js';
import { describe } from '../../../helpers/test.js';
import { vectorPath } from './vectors.js';

const test = describe('runtime/crypto/canonical');

/** Expect `fn` to throw a MeshError with `code`; returns its message. */
function throwsCode(fn: () => unknown, code: string): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, MeshError);
    assert.is((err as MeshError).code, code, (err as Error).message);
    return (err as Error).message;
  }
  throw new Error(`expected a MeshError ${code}, nothing was thrown`);
}

test('RFC 8785: every jcs vector (input → output) matches byte for byte', () => {
  const inputs = readdirSync(vectorPath('jcs', 'input')).filter((f) => f.endsWith('.json'));
  assert.ok(inputs.length >= 6, `expected the jcs vectors, found ${inputs.length}`);
  for (const f of inputs) {
    const input: unknown = JSON.parse(readFileSync(vectorPath('jcs', 'input', f), 'utf8'));
    const expected = readFileSync(vectorPath('jcs', 'output', f), 'utf8');
    assert.is(canonicalize(input), expected, `jcs/${f}`);
    assert.equal(
      canonicalBytes(input),
      new Uint8Array(readFileSync(vectorPath('jcs', 'output', f))),
    );
  }
});

test('canonicalBytes is the UTF-8 of canonicalize, as a plain Uint8Array', () => {
  const v = { b: 'é€😀', a: [1, true, null] };
  const bytes = canonicalBytes(v);
  assert.is(bytes.constructor, Uint8Array);
  assert.is(Buffer.from(bytes).toString('utf8'), '{"a":[1,true,null],"b":"é€😀"}');
});

test('key order is by UTF-16 code units, whatever the insertion order', () => {
  assert.is(
    canonicalize({ b: 1, a: 2, A: 3, é: 4, '\u{1F600}': 5, '\uFB33': 6 }),
    canonicalize({ '\uFB33': 6, '\u{1F600}': 5, é: 4, A: 3, a: 2, b: 1 }),
  );
  assert.is(canonicalize({ '\uFB33': 1, '\u{1F600}': 2 }), '{"😀":2,"דּ":1}');
});

test('canonicalize refuses values without a JSON form (ERR_SCHEMA)', () => {
  throwsCode(() => canonicalize(undefined), 'ERR_SCHEMA');
  throwsCode(() => canonicalize(() => 1), 'ERR_SCHEMA');
  throwsCode(() => canonicalize({ a: NaN }), 'ERR_SCHEMA');
  throwsCode(() => canonicalize([Infinity]), 'ERR_SCHEMA');
  throwsCode(() => canonicalize({ s: '\uD800' }), 'ERR_SCHEMA');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  throwsCode(() => canonicalize(cyclic), 'ERR_SCHEMA');
});

test('assertJournalValue accepts strings, safe integers, booleans, null, arrays, plain objects', () => {
  const ok = {
    s: 'text é 😀',
    n: Number.MAX_SAFE_INTEGER,
    neg: -Number.MAX_SAFE_INTEGER,
    zero: 0,
    t: true,
    f: false,
    z: null,
    arr: [1, 'a', [null, { deep: [] }]],
    obj: {},
    nullProto: Object.assign(Object.create(null) as object, { a: 1 }),
    otherRealm: runInNewContext('({ a: [1, { b: "c" }] })') as unknown,
  };
  assertJournalValue(ok, 'body');
  assertJournalValue('plain', 'body');
  assertJournalValue(null, 'body');
});

test('assertJournalValue: floats, NaN, Infinity and unsafe integers name the path', () => {
  for (const bad of [1.5, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 1e21]) {
    assert.is(
      throwsCode(() => assertJournalValue({ port: bad }, 'body'), 'ERR_SCHEMA'),
      'body.port must be a safe integer',
      String(bad),
    );
  }
});

test('assertJournalValue: paths through arrays and odd keys', () => {
  assert.is(
    throwsCode(() => assertJournalValue({ tags: ['a', 0.5] }, 'body'), 'ERR_SCHEMA'),
    'body.tags[1] must be a safe integer',
  );
  assert.is(
    throwsCode(
      () => assertJournalValue({ 'a b': { c: [{ d: undefined }] } }, 'entry'),
      'ERR_SCHEMA',
    ),
    'entry["a b"].c[0].d must not be undefined',
  );
  assert.is(
    throwsCode(() => assertJournalValue(undefined, 'body'), 'ERR_SCHEMA'),
    'body must not be undefined',
  );
});

test('assertJournalValue refuses undefined members, holes and non-plain objects', () => {
  class Point {
    x = 1;
  }
  const cases: [unknown, RegExp][] = [
    [{ a: undefined }, /^body\.a must not be undefined$/],
    [[1, , 3], /^body\[1\] must not be a hole/], // eslint-disable-line no-sparse-arrays
    [{ d: new Date(0) }, /^body\.d must be a plain object, not a Date$/],
    [{ m: new Map() }, /^body\.m must be a plain object, not a Map$/],
    [{ p: new Point() }, /^body\.p must be a plain object, not a Point$/],
    [{ u: new Uint8Array(2) }, /^body\.u must be a plain object, not a Uint8Array$/],
    [{ r: /x/ }, /^body\.r must be a plain object/],
    [{ b: new String('x') }, /^body\.b must be a plain object/],
    [{ f: () => 1 }, /^body\.f must not be a function$/],
    [{ y: Symbol('s') }, /^body\.y must not be a symbol$/],
    [{ i: 1n }, /^body\.i must not be a bigint$/],
    [{ [Symbol('k')]: 1 }, /^body must not have symbol keys$/],
    [{ s: 'a\uDC00b' }, /^body\.s must be a well-formed string/],
  ];
  for (const [value, re] of cases) {
    const msg = throwsCode(() => assertJournalValue(value, 'body'), 'ERR_SCHEMA');
    assert.match(msg, re);
  }
});

test('assertJournalValue bounds nesting depth', () => {
  let v: unknown = 1;
  for (let i = 0; i < MAX_JOURNAL_DEPTH; i++) v = [v];
  assertJournalValue(v, 'body');
  const msg = throwsCode(() => assertJournalValue([v], 'body'), 'ERR_SCHEMA');
  assert.match(msg, /nested deeper than 64 levels/);
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  throwsCode(() => assertJournalValue(deep, 'body'), 'ERR_SCHEMA');
});

test('a journal value survives JSON round trip with identical canonical bytes', () => {
  const v = {
    kind: 'offer',
    body: { port: 8080, proto: 'tcp', tags: ['x', 'ü'], on: true, n: null },
  };
  assertJournalValue(v, 'entry');
  assert.is(canonicalize(JSON.parse(canonicalize(v))), canonicalize(v));
});

test.run();
