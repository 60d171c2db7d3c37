/**
 * Runs nft from a small long-lived /bin/sh instead of from this process.
 *
 * Why: Node starts a child with fork() + exec(). fork() copies the page
 * tables of the whole process and holds its memory map locked meanwhile;
 * for a node daemon of 150 MB with a dozen threads that measured 4-10 ms per
 * nft run, on the executor's thread, stalling every other thread that
 * touched the memory map (bench nft: ChildProcess.spawn was the largest
 * self time of the executor, 10 ms per grant in grant_e2e). A shell of a few
 * hundred KB forks in well under a millisecond. The launcher is started once
 * (one fork of the big process) and restarted if it dies.
 *
 * The contract with the shell is fixed, and nothing from a request reaches
 * it: the script below is a constant; each job is one line `MODE PATH`,
 * MODE one of the letters below, PATH a file name this module made (checked
 * against JOB_PATH before it is written to the shell). nft's argv is chosen
 * by the script from MODE, never built from text. The table name is the
 * script's $1, validated by the backend (checkName) before start.
 *
 *   f PATH   nft -f PATH                   commit a batch file
 *   c PATH   nft -c -f PATH                check a batch file, commit nothing
 *   l PATH   nft -j list table inet $1     list our table
 *   s PATH   nft -j list set inet $1 $2    list the probe set
 *
 * nft's stdout and stderr go to PATH.out and PATH.err; the shell answers the
 * job with nft's exit status on a line of its own. Jobs run one at a time,
 * in order (the shell reads the next line when nft has exited).
 *
 * Crash safety is that of the direct spawn: a batch file is complete before
 * its line is written, so nft never sees a prefix. If this process dies, the
 * shell reads EOF and exits after the nft it may be running (whose batch was
 * whole). A job over its time limit kills the shell's process group (shell
 * and nft), fails, and the next job starts a fresh shell.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { nftFailed, nftUnavailable } from '../../runtime/errors.js';
import { LineReader } from '../../runtime/lines.js';

const SHELL = '/bin/sh';
/** Every job's path: one of our scratch files (no space, no newline, no shell syntax). */
const JOB_PATH = /^\/[A-Za-z0-9._/-]+$/;
const SCRIPT = [
  'while IFS=" " read -r mode f; do',
  '  case "$mode" in',
  '    f) "$0" -f "$f" ;;',
  '    c) "$0" -c -f "$f" ;;',
  '    l) "$0" -j list table inet "$1" ;;',
  '    t) "$0" list table inet "$1" ;;',
  '    s) "$0" -j list set inet "$1" "$2" ;;',
  '    *) echo "meshnode launcher: unknown job" >&2; false ;;',
  '  esac <"/dev/null" >"$f.out" 2>"$f.err"',
  '  echo "$?"',
  'done',
].join('\n');

/** f: commit a file; c: check one; l: list our table (JSON); t: the same as text (JSON omits the table's comment); s: list the probe set. */
export type JobMode = 'f' | 'c' | 'l' | 't' | 's';

interface Job {
  resolve: (code: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class NftLauncher {
  private shell: ChildProcess | null = null;
  /** Jobs written to the shell, oldest first: the shell answers in this order. */
  private readonly inFlight: Job[] = [];
  private closed = false;

  /**
   * @param nft      path of the nft binary (the script's $0)
   * @param table    our table ($1), already validated
   * @param probeSet the probe set's name ($2)
   */
  constructor(
    private readonly nft: string,
    private readonly table: string,
    private readonly probeSet: string,
    private readonly timeoutMs: number,
  ) {}

  /** Run one job; resolves with nft's exit status (its output is in PATH.out / PATH.err). */
  run(mode: JobMode, path: string): Promise<number> {
    if (this.closed) return Promise.reject(nftFailed(mode, 'the nft launcher is closed'));
    if (!JOB_PATH.test(path)) return Promise.reject(nftFailed(mode, `bad job path ${path}`));
    const shell = this.shell ?? this.start();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.shellOnTimeout(shell), this.timeoutMs);
      this.inFlight.push({ resolve, reject, timer });
      shell.stdin!.write(`${mode} ${path}\n`);
    });
  }

  /** No more jobs: the shell exits at EOF, once the jobs in flight are answered. */
  close(): void {
    this.closed = true;
    this.shell?.stdin!.end();
    this.release();
  }

  private start(): ChildProcess {
    const shell = spawn(SHELL, ['-c', SCRIPT, this.nft, this.table, this.probeSet], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { LC_ALL: 'C' },
      // Its own process group: a timeout kills the shell and the nft it runs together.
      detached: true,
    });
    this.shell = shell;
    const lines = new LineReader((line) => this.shellOnLine(line));
    shell.stdout!.setEncoding('utf8');
    shell.stdout!.on('data', (d: string) => {
      lines.push(d);
      this.release();
    });
    shell.once('error', (e: NodeJS.ErrnoException) =>
      this.shellOnGone(
        shell,
        e.code === 'ENOENT' || e.code === 'EACCES'
          ? nftUnavailable(`${SHELL}: ${e.code}`)
          : nftFailed('launch', e.message),
      ),
    );
    shell.once('exit', (code, signal) =>
      this.shellOnGone(shell, nftFailed('launch', `the nft launcher exited (${signal ?? code})`)),
    );
    // A write after the shell died must fail its job, not the process.
    shell.stdin!.on('error', () => {});
    return shell;
  }

  private shellOnLine(line: string): void {
    const job = this.inFlight.shift();
    if (!job) return;
    clearTimeout(job.timer);
    const code = Number(line);
    if (Number.isInteger(code)) job.resolve(code);
    else job.reject(nftFailed('launch', `unexpected answer from the nft launcher: ${line}`));
  }

  /** Once closed and answered, the shell must not keep this thread's event loop alive. */
  private release(): void {
    if (!this.closed || this.inFlight.length > 0 || !this.shell) return;
    this.shell.stdout!.destroy();
    this.shell.unref();
  }

  private shellOnTimeout(shell: ChildProcess): void {
    if (shell.pid !== undefined) {
      try {
        process.kill(-shell.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.shellOnGone(shell, nftFailed('run', `nft did not finish within ${this.timeoutMs} ms`));
  }

  /** The shell is gone: fail what it held; the next job starts another. */
  private shellOnGone(shell: ChildProcess, err: Error): void {
    // 'error' and 'exit' may both come, and a timed-out shell exits after its successor started.
    if (this.shell !== shell) return;
    this.shell = null;
    for (const job of this.inFlight.splice(0)) {
      clearTimeout(job.timer);
      job.reject(err);
    }
  }
}
