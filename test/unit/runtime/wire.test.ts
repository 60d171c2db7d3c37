import * as assert from 'uvu/assert';
import { ASK, REPLY_ERROR, TELL } from '../../../runtime/types.js';
import type { Envelope } from '../../../runtime/types.js';
import { fromWire, toWire } from '../../../runtime/wire.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/wire');

test('an envelope survives the wire, with from/to supplied by the receiving side', () => {
  const cases: Envelope[] = [
    { k: TELL, id: 1, from: 'a', to: 'b', action: 'note', ts: 5, data: { x: [1, 2] } },
    { k: ASK, id: 2, from: 'a', to: 'b', action: 'q', ts: 6, data: 'hi', tags: { t: 'v' } },
    {
      k: REPLY_ERROR,
      id: 3,
      from: 'a',
      to: 'b',
      action: 'q',
      ts: 7,
      data: undefined,
      ref: 2,
      error: { code: 'ERR_X', message: 'm' },
    },
  ];
  for (const env of cases) {
    const wire = structuredClone(toWire(env));
    assert.equal(fromWire(wire, 'a', 'b'), env);
  }
});

test('from and to are not on the wire: the receiver cannot be told a different sender', () => {
  const wire = toWire({ k: TELL, id: 1, from: 'mallory', to: 'b', action: 'x', ts: 1 });
  assert.not.ok(JSON.stringify(wire).includes('mallory'));
  assert.is(fromWire(wire, 'a', 'b').from, 'a');
});

test('optional fields are left off the tuple when unset (smaller clones)', () => {
  assert.is(toWire({ k: TELL, id: 1, from: 'a', to: 'b', action: 'x', ts: 1, data: 3 }).length, 5);
  assert.is(toWire({ k: ASK, id: 1, from: 'a', to: 'b', action: 'x', ts: 1, ref: 4 }).length, 6);
});

test.run();
