/**
 * View rows (views.ts), entry by entry: what each kind writes is covered with
 * the store (store.test.ts); here, that a row does not depend on the order in
 * which the body's fields happened to be set.
 */
import * as assert from 'uvu/assert';
import { checkEntry } from '../../../actors/journal/validate.js';
import { viewRows } from '../../../actors/journal/views.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import { Feed, bodies, fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('journal/views');

/** The same body with its fields in reverse order. */
function reversed(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).reverse());
}

test('a row lists its fields in one order, whatever the order of the body it came from', () => {
  const f = new Feed(keyOf(81));
  const made: Array<[Entry['kind'], Record<string, unknown>]> = [
    ['node', bodies.node(1)],
    ['offer', bodies.offer('web', 443)],
    ['subscribe', bodies.subscribe(f.did)],
    ['approve', bodies.approve(fakeId(1))],
    ['revoke', bodies.revoke(fakeId(2))],
    ['grant', bodies.grant(fakeId(3), f.did)],
    ['ungrant', bodies.ungrant(fakeId(4), f.did)],
  ];
  for (const [kind, body] of made) {
    const e = f.make(kind, body);
    const flipped = { ...e, body: reversed(body) };
    const rows = JSON.stringify(viewRows(checkEntry(e)));
    assert.is(JSON.stringify(viewRows(checkEntry(flipped))), rows, kind);
    // And the row carries the body's values exactly.
    for (const [, , row] of viewRows(checkEntry(e))) {
      for (const [k, v] of Object.entries(row))
        if (k in body) assert.is(v, body[k], `${kind}.${k}`);
    }
  }
});

test.run();
