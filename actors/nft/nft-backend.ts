/**
 * The kernel backend: the only code in meshnode that runs nft.
 *
 * How nft is run, and why:
 *  - spawn(path, argv) with a fixed argv (`-f -`, `-c -f -`, `-j list table
 *    inet T`): never a shell, and no value from a request is ever an
 *    argument. The environment is reduced to LC_ALL=C (stable messages).
 *  - The batch reaches nft on stdin (`-f -`), but stdin is a complete file,
 *    not a pipe: the text is written whole to a private file (0600, in a
 *    0700 directory, O_EXCL), which is unlinked and handed to nft as fd 0.
 *    Fed through a pipe, a batch cut short by our crash (the worker or the
 *    process killed mid-write) would reach nft as EOF after a valid prefix,
 *    and nft would commit that prefix — say, the `delete` of a refresh
 *    without its `add`. With a file, nft either never starts or reads the
 *    whole batch: one atomic transaction of the old state or the new.
 *  - `nft -f` runs the whole file as one transaction: all or nothing.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { nftFailed, nftUnavailable } from '../../runtime/errors.js';
import type { Backend } from './backend.js';
import type { Batch } from './batch.js';
import { parseListing } from './listing.js';
import type { Snapshot } from './listing.js';
import { checkName } from './names.js';

/** A healthy nft finishes 100,000 elements in about a second; a stuck one is killed. */
const NFT_TIMEOUT_MS = 60_000;
/** Lines of nft's stderr kept in an error message. */
const ERROR_LINES = 6;
const BATCH_FILE = /^batch-\d+-\d+-\d+\.nft$/;

export interface NftRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The scratch set and documentation address (RFC 5737) of the timeout-update probe. */
const PROBE_SET = 'probe_timeout';
const PROBE_IP = '192.0.2.1';

export class NftBackend implements Backend {
  readonly kind = 'nft' as const;
  private seq = 0;

  refreshByAdd = false;

  private constructor(
    private readonly nft: string,
    private readonly table: string,
    private readonly dir: string,
    private readonly ownDir: boolean,
  ) {}

  /** Prepare the batch directory (clearing files a crash left) and check nft works. */
  static async open(nft: string, table: string, stateDir?: string): Promise<NftBackend> {
    checkName('table', table);
    let dir: string;
    if (stateDir) {
      dir = join(stateDir, 'nft');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const f of readdirSync(dir))
        if (BATCH_FILE.test(f)) rmSync(join(dir, f), { force: true });
    } else {
      dir = mkdtempSync(join(tmpdir(), 'meshnode-nft-'));
    }
    const backend = new NftBackend(nft, table, dir, !stateDir);
    const why = await backend.unusable();
    if (why) {
      await backend.close();
      throw nftUnavailable(why);
    }
    backend.refreshByAdd = await backend.probeTimeoutUpdate();
    return backend;
  }

  /**
   * Does `add element` restart a live element's timeout here? Asked of the
   * kernel itself, in a scratch set of our own table: add with 1 h, add
   * again with 2 h, list. Any doubt means no (the delete-then-add refresh
   * is correct everywhere, just slower).
   */
  async probeTimeoutUpdate(): Promise<boolean> {
    const t = `inet ${this.table}`;
    const set = `${t} ${PROBE_SET}`;
    try {
      const made = await this.run(
        ['-f', '-'],
        `add table ${t}\nadd set ${set} { type ipv4_addr; flags timeout; }\nadd element ${set} { ${PROBE_IP} timeout 1h }\n`,
      );
      if (made.code !== 0) return false;
      await this.run(['-f', '-'], `add element ${set} { ${PROBE_IP} timeout 2h }\n`);
      const listed = await this.run(['-j', 'list', 'set', 'inet', this.table, PROBE_SET]);
      return listed.code === 0 && /"timeout":\s*7200\b/.test(listed.stdout);
    } catch {
      return false;
    } finally {
      await this.run(['-f', '-'], `delete set ${set}\n`).catch(() => {});
    }
  }

  /** Why nft cannot manage our table here (null: it can). Checks, commits nothing. */
  async unusable(): Promise<string | null> {
    try {
      const r = await this.run(['-c', '-f', '-'], `add table inet ${this.table}\n`);
      return r.code === 0 ? null : firstLines(r.stderr) || `exit ${r.code}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async read(): Promise<Snapshot | null> {
    const at = Date.now();
    const r = await this.run(['-j', 'list', 'table', 'inet', this.table]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return null;
      throw nftFailed('list', firstLines(r.stderr) || `exit ${r.code}`);
    }
    return parseListing(r.stdout, this.table, at);
  }

  async commit(_batch: Batch, text: string): Promise<void> {
    const r = await this.run(['-f', '-'], text);
    if (r.code !== 0) throw nftFailed('commit', firstLines(r.stderr) || `exit ${r.code}`);
  }

  async check(_batch: Batch, text: string): Promise<void> {
    const r = await this.run(['-c', '-f', '-'], text);
    if (r.code !== 0) throw nftFailed('check', firstLines(r.stderr) || `exit ${r.code}`);
  }

  async probe(text: string): Promise<boolean> {
    return (await this.run(['-c', '-f', '-'], text)).code === 0;
  }

  async close(): Promise<void> {
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Run nft with `args`; `input` becomes its stdin as a complete file. */
  run(args: readonly string[], input?: string): Promise<NftRun> {
    let fd: number | undefined;
    if (input !== undefined) fd = this.batchFile(input);
    return new Promise((resolve, reject) => {
      let child;
      try {
        child = spawn(this.nft, args, {
          stdio: [fd ?? 'ignore', 'pipe', 'pipe'],
          env: { LC_ALL: 'C' },
        });
      } finally {
        // The child has its own copy of the descriptor once spawn returns.
        if (fd !== undefined) closeSync(fd);
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => err.push(d));
      const timer = setTimeout(() => child.kill('SIGKILL'), NFT_TIMEOUT_MS);
      child.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === 'ENOENT' || e.code === 'EACCES'
            ? nftUnavailable(`${this.nft}: ${e.code}`)
            : nftFailed(args.join(' '), e.message),
        );
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code: code ?? 128,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : ''),
        });
      });
    });
  }

  /** Write `text` whole to a fresh private file and return it open for reading at offset 0. */
  private batchFile(text: string): number {
    const path = join(this.dir, `batch-${process.pid}-${threadId}-${++this.seq}.nft`);
    const fd = openSync(path, 'wx+', 0o600);
    try {
      const buf = Buffer.from(text, 'utf8');
      // Positional writes leave the descriptor's offset at 0, where nft starts reading.
      for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at, buf.length - at, at);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    } finally {
      unlinkSync(path);
    }
  }
}

/** nft's error lines (the `Error:` lines and the statement they point at), bounded. */
function firstLines(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^\s*\^+\s*$/.test(l))
    .slice(0, ERROR_LINES)
    .join(' | ')
    .slice(0, 1000);
}
