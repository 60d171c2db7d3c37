import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JOURNAL_LAYOUT, JournalReader } from '../../../runtime/journal-reader.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('runtime/journal-reader');

/**
 * Another process writes to the journal's file, synchronously from the
 * reader's point of view (execFileSync blocks its thread: no timer of the
 * reader can fire in between, as when a worker's notice is handled before
 * lmdb-js resets its snapshot).
 */
function writeRow(stateDir: string, key: [string, string], value: unknown): void {
  const script = `
    import { open } from 'lmdb';
    const [path, key, value] = JSON.parse(process.argv[1]);
    const root = open({ path, maxDbs: ${JOURNAL_LAYOUT.maxDbs} });
    root.openDB('meta', {}).putSync('format', ${JOURNAL_LAYOUT.format});
    // A read-only handle opens only databases that exist: the store's three.
    for (const db of ['views', 'entries', 'ids']) root.openDB(db, {}).putSync('-', 0);
    if (key) root.openDB('views', {}).putSync(key, value);
    await root.close();
  `;
  const path = join(stateDir, JOURNAL_LAYOUT.dir, JOURNAL_LAYOUT.file);
  execFileSync(
    process.execPath,
    ['--input-type=module', '-e', script, JSON.stringify([path, key, value])],
    {
      // lmdb resolves from the project, as the node does.
      cwd: new URL('../../../..', import.meta.url).pathname,
    },
  );
}

test('refresh() sees a commit made after the thread last read; without it the old snapshot stays', async () => {
  const stateDir = tempDir();
  mkdirSync(join(stateDir, JOURNAL_LAYOUT.dir), { recursive: true });
  writeRow(stateDir, null as unknown as [string, string], null);
  const reader = JournalReader.open(stateDir);
  try {
    const key = 'target-id by-did';
    assert.is(reader.view('revocations', key), undefined);
    writeRow(stateDir, ['revocations', key], { id: 'r1' });
    // The premise (lmdb-js's snapshot per thread until its timer): a notice
    // handled now would read the journal as it was.
    assert.is(reader.view('revocations', key), undefined, 'same turn: the old snapshot');
    reader.refresh();
    assert.equal(reader.view('revocations', key), { id: 'r1' }, 'after refresh: the commit');
  } finally {
    await reader.close();
  }
});

test.run();
