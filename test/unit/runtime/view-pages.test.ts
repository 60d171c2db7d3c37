import * as assert from 'uvu/assert';
import { VIEW_PAGE_ROWS } from '../../../runtime/types.js';
import { allViewRows } from '../../../runtime/view-pages.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/view-pages');

/** A journal stand-in: `n` rows keyed k00000…, answered as the journal pages them. */
function journalOf(n: number) {
  const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(5, '0')}`);
  const asked: Array<string | undefined> = [];
  const ask = (data: { view: string; after?: string }) => {
    asked.push(data.after);
    const from = data.after === undefined ? 0 : keys.indexOf(data.after) + 1;
    return Promise.resolve(
      keys.slice(from, from + VIEW_PAGE_ROWS).map((k) => [k, { view: data.view, k }]),
    );
  };
  return { keys, asked, ask };
}

test('reads every row of a view longer than a page, in order, each page after the last key', async () => {
  const j = journalOf(2 * VIEW_PAGE_ROWS + 17);
  const rows = (await allViewRows(j.ask, 'offers')) as unknown as Array<
    [string, { view: string; k: string }]
  >;
  assert.equal(
    rows.map(([k]) => k),
    j.keys,
  );
  assert.ok(rows.every(([, r]) => r.view === 'offers'));
  assert.equal(j.asked, [undefined, j.keys[VIEW_PAGE_ROWS - 1], j.keys[2 * VIEW_PAGE_ROWS - 1]]);
});

test('a view of exactly one page takes a second, empty answer to end; a short one, one answer', async () => {
  const full = journalOf(VIEW_PAGE_ROWS);
  assert.is((await allViewRows(full.ask, 'grants')).length, VIEW_PAGE_ROWS);
  assert.is(full.asked.length, 2);
  const short = journalOf(3);
  assert.is((await allViewRows(short.ask, 'grants')).length, 3);
  assert.is(short.asked.length, 1);
});

test.run();
