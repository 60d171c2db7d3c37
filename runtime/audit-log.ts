/**
 * An append-only, hash-chained audit log: one JSON line per record,
 *
 *   {"seq":N,"ts":MS,"prev":"<hash of line N-1>", ...record, "hash":"<hash>"}
 *
 * where hash = BLAKE2b-256 over the line's canonical JSON without `hash`.
 * Editing, removing or reordering a line breaks the chain at that line.
 * Cutting lines off the end is caught by the head file (`<log>.head`, the
 * last seq and hash, replaced atomically after each append): an operator who
 * can rewrite both files can forge history, which is why the log is 0600
 * and its decisions are also in the signed journal (grant entries).
 *
 * One writer per file (the grant authorizer has its own log, the admin API
 * another). Each append is fsynced before it resolves: a decision is on disk
 * before it is acted on.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync } from 'node:fs';
import { openSync, readFileSync, renameSync } from 'node:fs';
import { mkdirSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { blake2b256Hex, canonicalize } from './crypto/index.js';
import { E } from './errors.js';

const GENESIS = '0'.repeat(64);

export interface AuditHead {
  seq: number;
  hash: string;
}

export type AuditVerdict =
  { ok: true; records: number; head: AuditHead } | { ok: false; line: number; reason: string };

export class AuditLog {
  private fd: number;
  private head: AuditHead;

  /** Open (creating 0600) and check the existing chain; a broken log refuses to open. */
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let verdict = verifyAuditLog(path);
    if (!verdict.ok && verdict.reason === 'last line is cut short') {
      // A crash (or a full disk) mid-append: that record was never
      // acknowledged (append returns after the fsync). Take it back.
      // Only if the rest then holds with the head file: a line the head
      // file counts was acknowledged, and its loss is damage, left as found.
      const text = readFileSync(path, 'utf8');
      writeFileSync(path, text.slice(0, text.lastIndexOf('\n') + 1));
      const after = verifyAuditLog(path);
      if (after.ok) verdict = after;
      else writeFileSync(path, text);
    }
    if (!verdict.ok) {
      throw E.ERR_AUDIT_BROKEN(
        `audit log ${path} is broken at line ${verdict.line}: ${verdict.reason}`,
      );
    }
    this.head = verdict.head;
    this.fd = openSync(path, 'a', 0o600);
  }

  get last(): AuditHead {
    return this.head;
  }

  /** Append one record; durable when it returns. */
  append(record: Record<string, unknown>): AuditHead {
    // `hash` is the line's own field: a record's `hash` would be hashed, then replaced (a broken line).
    const { hash: _hash, ...fields } = record;
    const body = { ...fields, seq: this.head.seq + 1, ts: Date.now(), prev: this.head.hash };
    const hash = blake2b256Hex(new TextEncoder().encode(canonicalize(body)));
    const before = fstatSync(this.fd).size;
    try {
      const line = Buffer.from(`${JSON.stringify({ ...body, hash })}\n`);
      // A full disk may take part of the line and say so only by the count.
      if (writeSync(this.fd, line) !== line.length) {
        throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      }
      fsyncSync(this.fd);
    } catch (err) {
      // A line cut short by a full disk would break the chain for good (the
      // log refuses to open): take it back, and refuse what was to be audited.
      try {
        ftruncateSync(this.fd, before);
      } catch {
        // nothing more to do: verify names the cut line
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw E.ERR_STORAGE_FULL(`audit log ${this.path}: the disk is full; nothing was done`);
      }
      throw err;
    }
    this.head = { seq: body.seq, hash };
    try {
      writeHead(this.path, this.head);
    } catch {
      // The head file may lag the log by a line (verify allows it); the line is durable.
    }
    return this.head;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Re-check a log from its first line against its head file. */
export function verifyAuditLog(path: string): AuditVerdict {
  let head: AuditHead = { seq: 0, hash: GENESIS };
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const lines = text === '' ? [] : text.split('\n');
  if (lines.length > 0 && lines.at(-1) !== '') {
    return { ok: false, line: lines.length, reason: 'last line is cut short' };
  }
  lines.pop();
  const hashes = [GENESIS];
  for (let i = 0; i < lines.length; i++) {
    let rec: unknown;
    try {
      rec = JSON.parse(lines[i]!);
    } catch {
      return { ok: false, line: i + 1, reason: 'not JSON' };
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) {
      return { ok: false, line: i + 1, reason: 'not a JSON object' };
    }
    const { hash, ...body } = rec as Record<string, unknown>;
    if (body.seq !== head.seq + 1) return { ok: false, line: i + 1, reason: 'seq out of order' };
    if (body.prev !== head.hash) return { ok: false, line: i + 1, reason: 'prev hash mismatch' };
    const expect = blake2b256Hex(new TextEncoder().encode(canonicalize(body)));
    if (hash !== expect) return { ok: false, line: i + 1, reason: 'hash mismatch (edited)' };
    head = { seq: body.seq as number, hash: expect };
    hashes.push(expect);
  }
  // The head file may lag the log by the one line a crash cut between the
  // two writes; it may never be ahead of it or disagree with it.
  const stored = readHead(path);
  if (stored === null) {
    return { ok: false, line: lines.length + 1, reason: 'head file is not a seq and a hash' };
  }
  if (stored && stored.seq > head.seq) {
    return {
      ok: false,
      line: lines.length + 1,
      reason: `head file says seq ${stored.seq}; the log ends at ${head.seq} (truncated)`,
    };
  }
  if (stored && hashes[stored.seq] !== stored.hash) {
    return { ok: false, line: stored.seq, reason: 'head file disagrees with the log (rewritten)' };
  }
  return { ok: true, records: lines.length, head };
}

/** The head file: undefined if there is none, null if it holds anything but a head. */
function readHead(path: string): AuditHead | null | undefined {
  let text: string;
  try {
    text = readFileSync(`${path}.head`, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const h = JSON.parse(text) as Partial<AuditHead> | null;
    if (Number.isSafeInteger(h?.seq) && h!.seq! >= 0 && typeof h?.hash === 'string') {
      return { seq: h.seq!, hash: h.hash };
    }
  } catch {
    // not JSON: not a head
  }
  return null;
}

/** Replace the head file atomically (write, fsync, rename). */
function writeHead(path: string, head: AuditHead): void {
  const tmp = `${path}.head.tmp`;
  writeFileSync(tmp, JSON.stringify(head), { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, `${path}.head`);
}
