/**
 * The kernel backend: the only code in meshnode that runs nft.
 *
 * How nft is run, and why:
 *  - by a long-lived /bin/sh (launcher.ts): forking this big process for
 *    every nft run cost 4-10 ms and stalled its other threads. nft's argv is
 *    one of four fixed forms (`-f FILE`, `-c -f FILE`, `-j list table inet
 *    T`, `-j list set inet T probe_timeout`), chosen by a constant script:
 *    no value from a request is ever an argument or shell text. The
 *    environment is reduced to LC_ALL=C (stable messages).
 *  - A batch reaches nft as a complete file, never a pipe: the text is
 *    written whole to a private file (0600, in a 0700 directory, O_EXCL)
 *    before nft is asked to read it. Fed through a pipe, a batch cut short by
 *    our crash (the worker or the process killed mid-write) would reach nft
 *    as EOF after a valid prefix, and nft would commit that prefix — say,
 *    the `delete` of a refresh without its `add`. With a file, nft either
 *    never starts or reads the whole batch: one atomic transaction of the
 *    old state or the new. Files a crash left are removed at the next open.
 *  - `nft -f` runs the whole file as one transaction: all or nothing.
 */
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { E, nftFailed, nftUnavailable } from '../../runtime/errors.js';
import type { Backend } from './backend.js';
import { TABLE_MARK } from './batch.js';
import type { Batch } from './batch.js';
import { NftLauncher } from './launcher.js';
import type { JobMode } from './launcher.js';
import { parseListing } from './listing.js';
import type { Snapshot } from './listing.js';
import { CHAIN, checkName } from './names.js';

/** A healthy nft finishes 100,000 elements in about a second; a stuck one is killed. */
const NFT_TIMEOUT_MS = 60_000;
/** Lines of nft's stderr kept in an error message. */
const ERROR_LINES = 6;
/** A job's scratch files: the batch, and nft's stdout and stderr. */
const JOB_FILE = /^job-\d+-\d+-\d+\.nft(?:\.out|\.err)?$/;

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
  private readonly launcher: NftLauncher;

  refreshByAdd = false;

  private constructor(
    nft: string,
    private readonly table: string,
    private readonly dir: string,
    private readonly ownDir: boolean,
  ) {
    this.launcher = new NftLauncher(nft, table, PROBE_SET, NFT_TIMEOUT_MS);
  }

  /** Prepare the batch directory (clearing files a crash left) and check nft works. */
  static async open(
    nft: string,
    table: string,
    stateDir?: string,
    adoptTable = false,
  ): Promise<NftBackend> {
    checkName('table', table);
    let dir: string;
    if (stateDir) {
      dir = join(stateDir, 'nft');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const f of readdirSync(dir)) if (JOB_FILE.test(f)) rmSync(join(dir, f), { force: true });
    } else {
      dir = mkdtempSync(join(tmpdir(), 'meshnode-nft-'));
    }
    const backend = new NftBackend(nft, table, dir, !stateDir);
    const why = await backend.unusable();
    if (why) {
      await backend.close();
      throw nftUnavailable(why);
    }
    if (!adoptTable && (await backend.owner()) === 'foreign') {
      await backend.close();
      throw E.ERR_NFT_FOREIGN_TABLE(
        `table inet ${table} exists and was not created by meshnode (no "${TABLE_MARK}" comment); ` +
          'managing it would delete its sets and rules. Use another [nft] table, remove that one, ' +
          'or set [nft] adopt_table = true (start --adopt-table) to hand it over',
      );
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
        'f',
        `add table ${t} { comment "${TABLE_MARK}"; }\nadd set ${set} { type ipv4_addr; flags timeout; }\nadd element ${set} { ${PROBE_IP} timeout 1h }\n`,
      );
      if (made.code !== 0) return false;
      await this.run('f', `add element ${set} { ${PROBE_IP} timeout 2h }\n`);
      const listed = await this.run('s');
      return listed.code === 0 && /"timeout":\s*7200\b/.test(listed.stdout);
    } catch {
      return false;
    } finally {
      await this.run('f', `delete set ${set}\n`).catch(() => {});
    }
  }

  /** Whose our table is: absent, ours (it carries our mark), or foreign. */
  async owner(): Promise<'absent' | 'ours' | 'foreign'> {
    const r = await this.run('t');
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return 'absent';
      throw nftFailed('list', firstLines(r.stderr) || `exit ${r.code}`);
    }
    // `table inet NAME {` then, when it has one, `\tcomment "..."` first.
    const comment = /^table inet \S+ \{\n\s*comment "([^"]*)"/.exec(r.stdout)?.[1];
    if (comment === TABLE_MARK) return 'ours';
    return comment === undefined && madeByEarlierMeshnode(r.stdout) ? 'ours' : 'foreign';
  }

  /** Why nft cannot manage our table here (null: it can). Checks, commits nothing. */
  async unusable(): Promise<string | null> {
    try {
      const r = await this.run('c', `add table inet ${this.table}\n`);
      return r.code === 0 ? null : firstLines(r.stderr) || `exit ${r.code}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async read(): Promise<Snapshot | null> {
    const at = Date.now();
    const r = await this.run('l');
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return null;
      throw nftFailed('list', firstLines(r.stderr) || `exit ${r.code}`);
    }
    return parseListing(r.stdout, this.table, at);
  }

  async commit(_batch: Batch, text: string): Promise<void> {
    const r = await this.run('f', text);
    if (r.code !== 0) throw nftFailed('commit', firstLines(r.stderr) || `exit ${r.code}`);
  }

  async check(_batch: Batch, text: string): Promise<void> {
    const r = await this.run('c', text);
    if (r.code !== 0) throw nftFailed('check', firstLines(r.stderr) || `exit ${r.code}`);
  }

  async probe(text: string): Promise<boolean> {
    return (await this.run('c', text)).code === 0;
  }

  async close(): Promise<void> {
    this.launcher.close();
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Run one nft job (launcher.ts for the modes); `input`, for `f` and `c`,
   * is the batch, written whole to a fresh private file before nft starts.
   */
  async run(mode: JobMode, input?: string): Promise<NftRun> {
    const path = join(this.dir, `job-${process.pid}-${threadId}-${++this.seq}.nft`);
    try {
      if (input !== undefined) writeWhole(path, input);
      const code = await this.launcher.run(mode, path);
      return {
        code,
        stdout: readFileSync(`${path}.out`, 'utf8'),
        stderr: readFileSync(`${path}.err`, 'utf8'),
      };
    } finally {
      for (const f of [path, `${path}.out`, `${path}.err`]) rmSync(f, { force: true });
    }
  }
}

/**
 * A table meshnode made before tables were marked (upgrades must take their
 * own table back): no comment, and nothing in it but what the executor
 * creates — its base chain and service sets (`tcp_22_v4`) or the probe set.
 * Anything else in it (another chain, a set of another name) is someone's.
 */
function madeByEarlierMeshnode(listing: string): boolean {
  const objects = [
    ...listing.matchAll(
      /^\s*(chain|set|map|flowtable|counter|quota|ct|limit|secmark|synproxy)\s+(\S+)\s*\{/gm,
    ),
  ];
  return objects.every(
    ([, kind, name]) =>
      (kind === 'chain' && name === CHAIN) ||
      (kind === 'set' && (LEGACY_SET.test(name!) || name === PROBE_SET)),
  );
}

/** The executor's set names: `<proto>_<port>_v4|v6`. */
const LEGACY_SET = /^(tcp|udp)_\d{1,5}_v[46]$/;

/** Write `text` to a new file (O_EXCL, 0600), whole, before anyone may read it. */
function writeWhole(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    const buf = Buffer.from(text, 'utf8');
    for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at, buf.length - at, at);
  } finally {
    closeSync(fd);
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
