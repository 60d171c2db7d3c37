/**
 * The hash-chained audit log (runtime/audit-log.ts): a log written by the
 * writer verifies; each kind of damage is detected at its line; a crash
 * between the log write and the head write is accepted; the writer refuses
 * to open a broken log. Files are damaged with plain fs calls, as an
 * operator (or a bad disk) would.
 */
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { AuditLog, verifyAuditLog } from '../../../runtime/audit-log.js';
import { blake2b256Hex, canonicalize } from '../../../runtime/crypto/index.js';
import type { AuditVerdict } from '../../../runtime/audit-log.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('runtime/audit-log');

let n = 0;
/** A fresh log path in a directory that does not exist yet. */
const freshPath = (): string => join(tempDir('meshnode-audit-'), `sub${n++}`, 'grants.log');

/** Write `count` records with the writer; returns the path. */
function written(count: number, path = freshPath()): string {
  const log = new AuditLog(path);
  for (let i = 1; i <= count; i++) {
    log.append({ kind: 'decision', allow: i % 2 === 0, subscriber: `s${i}`, ip: `10.0.0.${i}` });
  }
  log.close();
  return path;
}

const readLines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').slice(0, -1);
const writeLines = (path: string, lines: string[]): void =>
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
const headOf = (path: string) =>
  JSON.parse(readFileSync(`${path}.head`, 'utf8')) as { seq: number; hash: string };

function brokenAt(v: AuditVerdict, line: number, what: string): void {
  assert.is(v.ok, false, `${what}: expected a broken log`);
  if (!v.ok) assert.is(v.line, line, `${what}: ${v.reason}`);
}

function openCode(path: string): string {
  try {
    new AuditLog(path).close();
    return 'opened';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

test('a log written by the writer verifies, with its record count and head', () => {
  const path = written(5);
  const v = verifyAuditLog(path);
  assert.is(v.ok, true);
  if (v.ok) {
    assert.is(v.records, 5);
    assert.equal(v.head, headOf(path));
    assert.is(v.head.seq, 5);
  }
});

test('records carry seq, ts, prev and hash, and chain to one another', () => {
  const path = written(3);
  const recs = readLines(path).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(
    recs.map((r) => r.seq),
    [1, 2, 3],
  );
  assert.is(recs[0]!.prev, '0'.repeat(64));
  assert.is(recs[1]!.prev, recs[0]!.hash);
  assert.is(recs[2]!.prev, recs[1]!.hash);
  for (const r of recs) {
    assert.match(String(r.hash), /^[0-9a-f]{64}$/);
    assert.type(r.ts, 'number');
  }
  assert.is(recs[2]!.subscriber, 's3', 'the record fields are kept');
});

test('an empty or missing log verifies with no records', () => {
  const missing = freshPath();
  assert.equal(verifyAuditLog(missing), {
    ok: true,
    records: 0,
    head: { seq: 0, hash: '0'.repeat(64) },
  });
});

test('reopening continues the chain', () => {
  const path = written(2);
  const log = new AuditLog(path);
  assert.is(log.last.seq, 2);
  const head = log.append({ kind: 'ungrant', reason: 'expired' });
  log.close();
  assert.is(head.seq, 3);
  const v = verifyAuditLog(path);
  assert.ok(v.ok && v.records === 3);
});

test('an edited line is detected at that line', () => {
  const path = written(5);
  const lines = readLines(path);
  lines[2] = lines[2]!.replace('"allow":false', '"allow":true');
  assert.ok(lines[2]!.includes('"allow":true'), 'the edit took');
  writeLines(path, lines);
  brokenAt(verifyAuditLog(path), 3, 'edited line 3');
});

/** Re-hash a record as the writer does (what a forger with write access can do). */
function rehash(rec: Record<string, unknown>): string {
  const { hash: _hash, ...body } = rec;
  const hash = blake2b256Hex(new TextEncoder().encode(canonicalize(body)));
  return JSON.stringify({ ...body, hash });
}

test('an edited line with its hash recomputed breaks the next line', () => {
  const path = written(5);
  const lines = readLines(path);
  const rec = JSON.parse(lines[1]!) as Record<string, unknown>;
  rec.subscriber = 'someone else';
  lines[1] = rehash(rec);
  writeLines(path, lines);
  brokenAt(verifyAuditLog(path), 3, 'line 2 forged and re-hashed');
});

test('a whole chain re-hashed after an edit is caught by the head file', () => {
  const path = written(5);
  const lines = readLines(path);
  let prev = '0'.repeat(64);
  const forged = lines.map((l, i) => {
    const rec = JSON.parse(l) as Record<string, unknown>;
    if (i === 1) rec.subscriber = 'someone else';
    rec.prev = prev;
    const line = rehash(rec);
    prev = (JSON.parse(line) as { hash: string }).hash;
    return line;
  });
  writeLines(path, forged);
  brokenAt(verifyAuditLog(path), 5, 'head file hash differs at seq 5');
});

test('a removed line is detected at the line that follows it', () => {
  const path = written(5);
  const lines = readLines(path);
  lines.splice(1, 1);
  writeLines(path, lines);
  brokenAt(verifyAuditLog(path), 2, 'line 2 removed');
});

test('removing the first line is detected at line 1', () => {
  const path = written(3);
  writeLines(path, readLines(path).slice(1));
  brokenAt(verifyAuditLog(path), 1, 'line 1 removed');
});

test('reordered lines are detected at the first line out of place', () => {
  const path = written(5);
  const lines = readLines(path);
  [lines[3], lines[2]] = [lines[2]!, lines[3]!];
  writeLines(path, lines);
  brokenAt(verifyAuditLog(path), 3, 'lines 3 and 4 swapped');
});

test('a truncated tail (the head file ahead of the log) is detected', () => {
  const path = written(5);
  writeLines(path, readLines(path).slice(0, 3));
  brokenAt(verifyAuditLog(path), 4, 'last two lines cut');
});

test('a log emptied under its head file is detected', () => {
  const path = written(3);
  writeFileSync(path, '');
  brokenAt(verifyAuditLog(path), 1, 'all lines cut');
});

test('a cut-short last line is detected at that line', () => {
  const path = written(4);
  const text = readFileSync(path, 'utf8');
  writeFileSync(path, text.slice(0, text.length - 20));
  brokenAt(verifyAuditLog(path), 4, 'line 4 cut short');
});

test('a last line without its newline is detected as cut short', () => {
  const path = written(2);
  const text = readFileSync(path, 'utf8');
  writeFileSync(path, text.slice(0, -1));
  brokenAt(verifyAuditLog(path), 2, 'no final newline');
});

test('a crash between the log write and the head write (head one behind) is accepted', () => {
  const path = written(3);
  const before = readFileSync(`${path}.head`, 'utf8');
  const log = new AuditLog(path);
  log.append({ kind: 'decision', allow: true });
  log.close();
  // The crash: line 4 is on disk, the head file still says 3.
  writeFileSync(`${path}.head`, before);
  const v = verifyAuditLog(path);
  assert.is(v.ok, true, JSON.stringify(v));
  if (v.ok) assert.is(v.head.seq, 4);
  // The writer opens it and carries on from line 4.
  const again = new AuditLog(path);
  assert.is(again.last.seq, 4);
  again.append({ kind: 'decision', allow: false });
  again.close();
  assert.is(headOf(path).seq, 5);
  assert.ok(verifyAuditLog(path).ok);
});

test('a crash before the first head write (no head file, one line) is accepted', () => {
  const path = written(1);
  unlinkSync(`${path}.head`);
  assert.ok(verifyAuditLog(path).ok);
});

test('a head file that disagrees with the log (rewritten history) is detected', () => {
  const path = written(3);
  writeFileSync(`${path}.head`, JSON.stringify({ seq: 2, hash: 'a'.repeat(64) }));
  brokenAt(verifyAuditLog(path), 2, 'head hash at seq 2 differs');
});

test('a head file that is not a head is detected, not ignored', () => {
  for (const junk of ['', 'null', '[]', '{"seq":"3","hash":"x"}', '{"seq":-1,"hash":"x"}', '{']) {
    const path = written(3);
    writeFileSync(`${path}.head`, junk);
    const v = verifyAuditLog(path);
    assert.is(v.ok, false, `head file ${JSON.stringify(junk)}`);
  }
});

test('lines that are not JSON objects are detected at their line, never thrown', () => {
  for (const junk of ['null', '42', '"text"', '[1,2]', 'not json', '']) {
    const path = written(3);
    const lines = readLines(path);
    lines.splice(1, 0, junk);
    writeLines(path, lines);
    let v: AuditVerdict | undefined;
    try {
      v = verifyAuditLog(path);
    } catch (err) {
      assert.unreachable(`${JSON.stringify(junk)}: verify threw ${String(err)}`);
    }
    brokenAt(v!, 2, `inserted ${JSON.stringify(junk)}`);
  }
});

test('the writer refuses to open a broken log with ERR_AUDIT_BROKEN', () => {
  const damage: Array<[string, (path: string) => void]> = [
    ['edited', (p) => writeFileSync(p, readFileSync(p, 'utf8').replace('"s2"', '"s9"'))],
    [
      'removed',
      (p) =>
        writeLines(
          p,
          readLines(p).filter((_, i) => i !== 0),
        ),
    ],
    [
      'reordered',
      (p) => {
        const l = readLines(p);
        writeLines(p, [l[1]!, l[0]!, l[2]!]);
      },
    ],
    ['truncated', (p) => writeLines(p, readLines(p).slice(0, 1))],
    ['cut short', (p) => writeFileSync(p, readFileSync(p, 'utf8').slice(0, -5))],
  ];
  for (const [label, harm] of damage) {
    const path = written(3);
    const before = readFileSync(path, 'utf8');
    harm(path);
    assert.is.not(readFileSync(path, 'utf8'), before, `${label}: the damage took`);
    const damaged = readFileSync(path, 'utf8');
    assert.is(openCode(path), 'ERR_AUDIT_BROKEN', label);
    assert.is(readFileSync(path, 'utf8'), damaged, `${label}: nothing was appended`);
  }
});

test('the log and its head file are created 0600 in a 0700 directory', () => {
  const path = written(1);
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.is(statSync(`${path}.head`).mode & 0o777, 0o600);
  assert.is(statSync(join(path, '..')).mode & 0o777, 0o700);
  assert.not.ok(existsSync(`${path}.head.tmp`), 'no temporary head file is left');
});

test('a record field named like a chain field cannot break the chain', () => {
  const path = freshPath();
  const log = new AuditLog(path);
  log.append({ kind: 'decision', hash: 'x', seq: 99, prev: 'y', ts: 0 });
  log.append({ kind: 'decision' });
  log.close();
  const v = verifyAuditLog(path);
  assert.is(v.ok, true, JSON.stringify(v));
  const first = JSON.parse(readLines(path)[0]!) as Record<string, unknown>;
  assert.is(first.seq, 1);
  assert.is(first.prev, '0'.repeat(64));
  assert.is.not(first.hash, 'x');
});

test('strings from peers (newlines, unicode, quotes) stay on one line and verify', () => {
  const path = freshPath();
  const log = new AuditLog(path);
  log.append({ kind: 'decision', service: 'a\nb\r\n"}\u2028\u2029🔥\u0000', reason: '; flush' });
  log.append({ kind: 'decision', service: 'x'.repeat(10_000) });
  log.close();
  assert.is(readLines(path).length, 2);
  assert.ok(verifyAuditLog(path).ok);
});

test.run();
