/**
 * The host's checks before any process code runs (sandbox/message.ts):
 * message shape, tag normalisation with reserved tags, trust, assignments,
 * boot, and the deterministic seed.
 */
import * as assert from 'uvu/assert';
import {
  checkMessage,
  isAssignable,
  isAssignment,
  isBoot,
  isTrusted,
  matchesSpec,
  normalize,
  seedOf,
} from '../../../sandbox/message.js';
import type { MessageInput, ProcessSpec } from '../../../sandbox/types.js';
import { describe } from '../../helpers/test.js';

const test = describe('sandbox/message', 2000);

const spec: ProcessSpec = {
  name: 'policy',
  module: '/dev/null',
  owner: 'owner-did',
  authorities: ['authority-did'],
};

const input = (extra: Partial<MessageInput> = {}): MessageInput => ({
  Id: 'm1',
  From: 'owner-did',
  Timestamp: 1_700_000_000_000,
  Tags: [{ name: 'Action', value: 'Ping' }],
  ...extra,
});

test('a well-formed message passes; each malformed field is named', () => {
  assert.is(checkMessage(input()), null);
  assert.match(checkMessage({ ...input(), Id: '' })!, /message\.Id/);
  assert.match(checkMessage({ ...input(), Timestamp: 'now' })!, /message\.Timestamp/);
  assert.match(
    checkMessage({ ...input(), Tags: [{ name: 'A', value: 1 }] })!,
    /message\.Tags\.0\.value/,
  );
  assert.match(checkMessage({ ...input(), Data: 'x'.repeat(300 * 1024) })!, /message\.Data/);
  assert.match(
    checkMessage({
      ...input(),
      Tags: Array.from({ length: 200 }, () => ({ name: 'a', value: 'b' })),
    })!,
    /message\.Tags/,
  );
  assert.match(checkMessage(null)!, /message/);
});

test('normalize: tags become a map and fields, the original array is kept, defaults filled in', () => {
  const tags = [
    { name: 'Action', value: 'Ping' },
    { name: 'Count', value: '1' },
    { name: 'Count', value: '2' },
  ];
  const m = normalize(input({ Tags: tags }), 'policy');
  assert.equal(m.TagArray, tags);
  assert.equal(m.Tags, { Action: 'Ping', Count: '2' });
  assert.is(m.Action, 'Ping');
  assert.is(m.Count, '2');
  assert.is(m.Owner, 'owner-did', 'Owner defaults to From');
  assert.is(m.Target, 'policy', 'Target defaults to the process');
  assert.is(m['Block-Height'], '0');
  assert.is(m.Data, '');
});

test('normalize: a reserved tag never overrides the field the host vouches for', () => {
  const m = normalize(
    input({
      From: 'stranger',
      Tags: [
        { name: 'From', value: 'owner-did' },
        { name: 'Owner', value: 'owner-did' },
        { name: 'Target', value: 'elsewhere' },
        { name: 'Id', value: 'forged' },
        { name: 'Timestamp', value: '0' },
        { name: '__proto__', value: 'polluted' },
      ],
    }),
    'policy',
  );
  assert.is(m.From, 'stranger');
  assert.is(m.Owner, 'stranger');
  assert.is(m.Target, 'policy');
  assert.is(m.Id, 'm1');
  assert.is(m.Timestamp, 1_700_000_000_000);
  assert.is(m.Tags.From, 'owner-did', 'the tag is still there, as a tag');
  assert.is(Object.getPrototypeOf(m.Tags), Object.prototype, 'a __proto__ tag is data');
  assert.is(m.Tags['__proto__' as keyof typeof m.Tags], 'polluted');
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.not.ok(isTrusted(m, spec), 'a From tag does not make a stranger the owner');
});

test('trust: the owner, an authority as sender or as signer; nobody else', () => {
  assert.ok(isTrusted(normalize(input(), 'policy'), spec));
  assert.ok(isTrusted(normalize(input({ From: 'authority-did' }), 'policy'), spec));
  assert.ok(
    isTrusted(normalize(input({ From: 'some-process', Owner: 'authority-did' }), 'policy'), spec),
  );
  assert.not.ok(isTrusted(normalize(input({ From: 'stranger' }), 'policy'), spec));
  assert.not.ok(
    isTrusted(normalize(input({ From: 'stranger' }), 'policy'), { ...spec, authorities: [] }),
  );
});

test('assignments: default deny; allowed only when a pattern matches every field it names', () => {
  const m = normalize(input({ Target: 'other-process' }), 'policy');
  assert.ok(isAssignment(m, 'policy'));
  assert.not.ok(isAssignment(normalize(input(), 'policy'), 'policy'));
  assert.not.ok(isAssignable(m, []), 'no patterns: no assignments');
  assert.ok(isAssignable(m, [{ Action: 'Ping' }]));
  assert.ok(isAssignable(m, [{ Action: 'Ping', From: 'owner-did' }]));
  assert.not.ok(isAssignable(m, [{ Action: 'Ping', From: 'someone-else' }]));
  assert.not.ok(isAssignable(m, [{ Action: 'Pong' }]));
  assert.not.ok(matchesSpec(m, {}), 'an empty pattern matches nothing');
  assert.not.ok(matchesSpec(m, { toString: 'x' }), 'only own fields count');
});

test('boot: a Type = Process tag', () => {
  assert.ok(isBoot(normalize(input({ Tags: [{ name: 'Type', value: 'Process' }] }), 'policy')));
  assert.not.ok(isBoot(normalize(input(), 'policy')));
});

test('seed: same message and module, same seed; any of height, owner, module or id changes it', () => {
  const m = normalize(input(), 'policy');
  const s = seedOf(m, 'hash');
  assert.is(s.length, 4);
  assert.ok(s.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
  assert.equal(seedOf(normalize(input(), 'policy'), 'hash'), s);
  assert.not.equal(seedOf(normalize(input({ Id: 'm2' }), 'policy'), 'hash'), s);
  assert.not.equal(seedOf(normalize(input({ Owner: 'x' }), 'policy'), 'hash'), s);
  assert.not.equal(seedOf(normalize(input({ 'Block-Height': '7' }), 'policy'), 'hash'), s);
  assert.not.equal(seedOf(m, 'other-hash'), s);
});

test.run();
