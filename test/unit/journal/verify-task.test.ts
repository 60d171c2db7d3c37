/**
 * The pool task that checks ingested chunks: its packed answer must be
 * exactly what `checkAndVerify` gives entry by entry, and a refusal must be
 * the chunk's first bad entry with that entry's code.
 */
import * as assert from 'uvu/assert';
import checkChunk from '../../../actors/journal/verify-task.js';
import type { ChunkResult } from '../../../actors/journal/verify-task.js';
import { checkAndVerify } from '../../../actors/journal/validate.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import { Feed, bodies, clone, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('journal/verify-task');

/** A mixed chunk: several authors and kinds, one body with multi-byte UTF-8. */
function chunk(): Entry[] {
  const a = new Feed(keyOf(71));
  const b = new Feed(keyOf(72));
  const out: Entry[] = [];
  for (let i = 1; i <= 30; i++) {
    out.push(a.push('node', bodies.node(i)));
    out.push(b.push('offer', bodies.offer('web', 1000 + i)));
  }
  out.push(a.push('subscribe', bodies.subscribe(b.did)));
  out.push(b.push('node', { ...bodies.node(99), gossip: 'wss://nœud-ø.example/ü' }));
  return out;
}

function unpack(r: ChunkResult): Array<{ id: string; bytes: number[] }> {
  if (!r.ok) throw new Error(`refused: ${r.code} ${r.message}`);
  const out = [];
  let start = 0;
  for (let i = 0; i < r.ends.length; i++) {
    out.push({
      id: r.ids.slice(i * 64, i * 64 + 64),
      bytes: [...r.bytes.subarray(start, r.ends[i])],
    });
    start = r.ends[i]!;
  }
  assert.is(start, r.bytes.length, 'the buffer holds nothing past the last entry');
  return out;
}

test('the packed answer is checkAndVerify entry by entry: same bytes, same ids, in order', () => {
  const entries = chunk();
  const r = checkChunk({ entries: clone(entries), offset: 0 });
  assert.equal(
    unpack(r),
    entries.map((e) => {
      const c = checkAndVerify(clone(e));
      return { id: c.id, bytes: [...c.bytes] };
    }),
  );
});

test('an empty chunk is an empty answer', () => {
  assert.equal(unpack(checkChunk({ entries: [], offset: 0 })), []);
});

test('a bad entry: the chunk answers its first refusal only, with its index and code', () => {
  const entries: unknown[] = clone(chunk());
  const tampered = entries[6] as Entry;
  entries[6] = { ...tampered, body: { ...tampered.body, name: 'tampered' } };
  entries[20] = { ...(entries[20] as Entry), v: 2 };
  const r = checkChunk({ entries, offset: 500 });
  assert.equal(r, {
    ok: false,
    index: 506,
    code: 'ERR_BAD_SIGNATURE',
    message: 'entries[506] has an invalid signature',
  });
  // The same code and message as the inline check of that entry.
  try {
    checkAndVerify(entries[6], 'entries[506]');
    assert.unreachable('the tampered entry was accepted inline');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_BAD_SIGNATURE');
  }
  const first = checkChunk({ entries: entries.slice(8), offset: 8 });
  assert.equal(first.ok ? null : [first.index, first.code], [20, 'ERR_MALFORMED_ENTRY']);
  const notObject = checkChunk({ entries: [entries[0], 'entry'], offset: 0 });
  assert.equal(notObject.ok ? null : [notObject.index, notObject.code], [1, 'ERR_MALFORMED_ENTRY']);
});

test.run();
