/**
 * What leaves a process (sandbox/outbox.ts): parsed without prototypes,
 * shaped to the contract, `From` stamped with the process, reserved tags
 * stripped from sends, replies and forwards.
 */
import * as assert from 'uvu/assert';
import { errorResult, outboundTags, parseData, sanitizeResult } from '../../../sandbox/outbox.js';
import { describe } from '../../helpers/test.js';

const test = describe('sandbox/outbox', 2000);

test('parseData drops __proto__ keys at every depth', () => {
  const v = parseData('{"a":{"__proto__":{"polluted":1},"b":2},"__proto__":{"x":1}}') as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal(v, { a: { b: 2 } });
  assert.is(Object.getPrototypeOf(v.a), Object.prototype);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test('outbound tags: reserved names are dropped, Forwarded-By is the process, junk is skipped', () => {
  const tags = outboundTags(
    [
      { name: 'Action', value: 'Result' },
      { name: 'From', value: 'owner' },
      { name: 'Owner', value: 'owner' },
      { name: 'From-Process', value: 'x' },
      { name: 'Signature', value: 'forged' },
      { name: 'Timestamp', value: '1' },
      { name: 'Id', value: 'x' },
      { name: 'Block-Height', value: '9' },
      { name: 'Reply-To', value: 'inbox' },
      { name: 'Reference', value: '3' },
      { name: 'Forwarded-By', value: 'someone-else' },
      { name: 'Bad', value: 1 },
      'junk',
      null,
    ],
    'policy',
  );
  assert.equal(tags, [
    { name: 'Action', value: 'Result' },
    { name: 'Reply-To', value: 'inbox' },
    { name: 'Reference', value: '3' },
    { name: 'Forwarded-By', value: 'policy' },
  ]);
});

test('sanitizeResult keeps the contract shape and stamps From', () => {
  const r = sanitizeResult(
    JSON.stringify({
      Output: { allow: true },
      Messages: [
        { Target: 'peer', From: 'owner', Data: 'hi', Tags: [{ name: 'Owner', value: 'x' }] },
        { Target: '', Data: 'no target' },
        'junk',
      ],
      Spawns: [{ Module: 'mod', Data: 5, Tags: [] }, { Data: 'no module' }],
      Assignments: [{ Processes: ['a', 1], Message: 'm' }, { Processes: 'a' }],
      Extra: 'dropped',
    }),
    'policy',
  );
  assert.equal(r, {
    Output: { allow: true },
    Messages: [{ Target: 'peer', From: 'policy', Data: 'hi', Tags: [] }],
    Spawns: [{ Module: 'mod', Data: '', Tags: [] }],
    Assignments: [{ Processes: ['a'], Message: 'm' }],
  });
});

test('a result that is not a JSON object is a handler error; errorResult has an empty outbox', () => {
  assert.is(sanitizeResult('[1]', 'p').Code, 'ERR_SANDBOX_HANDLER');
  assert.is(sanitizeResult('undefined', 'p').Code, 'ERR_SANDBOX_HANDLER');
  assert.equal(errorResult('ERR_SANDBOX_TIMEOUT', 'late'), {
    Output: {},
    Messages: [],
    Spawns: [],
    Assignments: [],
    Error: 'late',
    Code: 'ERR_SANDBOX_TIMEOUT',
  });
});

test.run();
