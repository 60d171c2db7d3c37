/**
 * The closed-mesh allowlist file (actors/gossip/allowlist.ts): one DID a
 * line, `#` comments, re-read when the file changes (no restart), and a
 * file that is missing or holds a bad line keeps the list it had.
 */
import { renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Allowlist } from '../../../actors/gossip/allowlist.js';
import { keyOf } from '../../helpers/journal.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('gossip/allowlist');

const [a, b, c] = [keyOf(1).did, keyOf(2).did, keyOf(3).did];

/** A fresh allowlist file with `text` in a temp directory. */
function fileWith(text: string): string {
  const path = join(tempDir(), 'allowlist');
  writeFileSync(path, text);
  return path;
}

/** Rewrite the file and move its mtime on, as an editor saving a second later would. */
function edit(path: string, text: string): void {
  const before = statSync(path).mtime;
  writeFileSync(path, text);
  const later = new Date(before.getTime() + 1000);
  utimesSync(path, later, later);
}

test('loads one DID a line, skipping comments, blank lines and surrounding space', () => {
  const list = new Allowlist(
    fileWith(`# the mesh\n${a}\n\n   ${b}   # bob's node\n\t# ${c} is not in\n${a}\n`),
  );
  assert.equal(list.refresh(), { changed: true });
  assert.is(list.size, 2, 'a DID listed twice counts once');
  assert.ok(list.has(a));
  assert.ok(list.has(b));
  assert.not.ok(list.has(c), 'a commented-out DID is not allowed');
});

test('CRLF line ends and a missing final newline are accepted', () => {
  const list = new Allowlist(fileWith(`${a}\r\n${b}`));
  assert.equal(list.refresh(), { changed: true });
  assert.ok(list.has(a) && list.has(b));
});

test('an empty or comment-only file is an empty list: nobody is allowed', () => {
  const list = new Allowlist(fileWith('# nobody yet\n\n'));
  assert.equal(list.refresh(), { changed: true });
  assert.is(list.size, 0);
  assert.not.ok(list.has(a));
});

test('nothing is allowed before the first refresh', () => {
  const list = new Allowlist(fileWith(`${a}\n`));
  assert.is(list.size, 0);
  assert.not.ok(list.has(a));
});

test('an unchanged file is not re-read; an edit is picked up on the next refresh', () => {
  const path = fileWith(`${a}\n`);
  const list = new Allowlist(path);
  assert.equal(list.refresh(), { changed: true });
  assert.equal(list.refresh(), { changed: false }, 'same file: nothing to do');

  edit(path, `${a}\n${b}\n`);
  assert.equal(list.refresh(), { changed: true });
  assert.ok(list.has(b), 'added without a restart');

  edit(path, `${b}\n`);
  assert.equal(list.refresh(), { changed: true });
  assert.not.ok(list.has(a), 'removed without a restart');
  assert.ok(list.has(b));
});

test('an edit of the same size is noticed by its modification time', () => {
  const path = fileWith(`${a}\n`);
  const list = new Allowlist(path);
  list.refresh();
  edit(path, `${b}\n`); // a and b have the same length
  assert.equal(list.refresh(), { changed: true });
  assert.ok(list.has(b));
  assert.not.ok(list.has(a));
});

test('a file replaced by rename (the atomic-save pattern) is re-read', () => {
  const path = fileWith(`${a}\n`);
  const list = new Allowlist(path);
  list.refresh();
  const tmp = `${path}.new`;
  writeFileSync(tmp, `${c}\n`);
  renameSync(tmp, path);
  assert.equal(list.refresh(), { changed: true });
  assert.ok(list.has(c));
  assert.not.ok(list.has(a));
});

test('a malformed line keeps the previous list and says which line', () => {
  const path = fileWith(`${a}\n${b}\n`);
  const list = new Allowlist(path);
  list.refresh();
  edit(path, `${a}\n# fine\ndid:key:z6Mknotakey\n${c}\n`);
  const r = list.refresh();
  assert.is(r.changed, false);
  assert.type(r.error, 'string');
  assert.ok(r.error!.includes(':3:'), `the error names line 3: ${r.error}`);
  assert.ok(list.has(a) && list.has(b), 'the previous list stays');
  assert.not.ok(list.has(c), 'nothing of the bad file is taken');

  const again = list.refresh();
  assert.is(again.changed, false);
  assert.type(again.error, 'string', 'the error stays until the file is fixed');

  edit(path, `${c}\n`);
  assert.equal(list.refresh(), { changed: true }, 'the fixed file loads');
  assert.ok(list.has(c));
  assert.not.ok(list.has(a));
});

test('a malformed first load leaves the list empty (closed), not open', () => {
  const list = new Allowlist(fileWith(`${a}\nnot-a-did\n`));
  const r = list.refresh();
  assert.is(r.changed, false);
  assert.type(r.error, 'string');
  assert.is(list.size, 0);
  assert.not.ok(list.has(a));
});

test('a missing file is an error that keeps the previous list; its return is re-read', () => {
  const missing = new Allowlist(join(tempDir(), 'nope'));
  const r = missing.refresh();
  assert.is(r.changed, false);
  assert.type(r.error, 'string');
  assert.is(missing.size, 0);

  const path = fileWith(`${a}\n`);
  const list = new Allowlist(path);
  list.refresh();
  rmSync(path);
  const gone = list.refresh();
  assert.is(gone.changed, false);
  assert.type(gone.error, 'string');
  assert.ok(list.has(a), 'a deleted file does not empty the mesh');

  writeFileSync(path, `${b}\n${c}\n`);
  assert.equal(list.refresh(), { changed: true });
  assert.ok(list.has(b) && list.has(c));
  assert.not.ok(list.has(a));
});

test.run();
