/**
 * The operator's view in tests: a real node started as systemd starts it
 * (`node dist/supervisor/cli.js start -c CONFIG`, in its own temp dir), the
 * `meshnode` CLI run as a child process, and a raw admin-socket client that
 * sends exactly the bytes a test gives it.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonLines } from './process.js';
import { tempDir, until } from './test.js';
import type { AdminClient } from '../../supervisor/admin-client.js';
import { VERIFY_JOB, followJob } from '../../supervisor/cli-job.js';
import type { VerifyReport } from '../../runtime/protocol/journal.js';

/** The compiled `meshnode` executable (package.json "bin"). */
export const CLI = fileURLToPath(new URL('../../supervisor/cli.js', import.meta.url));
/** The repository root (the CLI's working directory in tests). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface RunningNode {
  dir: string;
  config: string;
  stateDir: string;
  socket: string;
  proc: ChildProcess;
  /** Its JSON log lines so far. */
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it has not exited within `ms`. */
  stop(ms?: number): Promise<void>;
}

export interface StartOptions {
  /** Appended to the loopback config. */
  extraToml?: string;
  /** Start again in the directory of a node that ran before (same config, same state). */
  dir?: string;
  /** Run it inside this network namespace (`ip netns exec NS …`; root only). */
  ns?: string;
  timeoutMs?: number;
  /** Added to the node process's environment (e.g. NODE_OPTIONS). */
  env?: Record<string, string>;
}

/**
 * Start a node on a fresh state directory (or `dir`'s again) with a
 * loopback config: no metrics port, gossip on an ephemeral port, the nft
 * executor's memory backend. Resolves
 * once it logs "meshnode ready".
 */
export async function startNode(opts: StartOptions = {}): Promise<RunningNode> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const dir = opts.dir ?? tempDir('meshnode-op-');
  const stateDir = join(dir, 'state');
  const config = join(dir, 'meshnode.toml');
  if (!opts.dir)
    writeFileSync(
      config,
      // The memory firewall backend: a test node must never touch the host's nftables.
      `[node]\nstate_dir = "${stateDir}"\n[metrics]\nlisten = ""\n[gossip]\nlisten = "127.0.0.1:0"\n[nft]\nbackend = "memory"\n${opts.extraToml ?? ''}`,
    );
  const argv = [process.execPath, CLI, 'start', '-c', config];
  // `ip netns exec` execs the command: the child's pid is the node's (a SIGKILL reaches it).
  if (opts.ns) argv.unshift('ip', 'netns', 'exec', opts.ns);
  const proc = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
  const { lines } = jsonLines(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const node: RunningNode = {
    dir,
    config,
    stateDir,
    socket: join(stateDir, 'admin.sock'),
    proc,
    lines,
    exited,
    async stop(ms = 10_000) {
      if (gone) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await until(
      () => {
        if (gone) throw new Error(`node exited while starting: ${stderr}${JSON.stringify(lines)}`);
        return lines.some((l) => l.msg === 'meshnode ready');
      },
      timeoutMs,
      'meshnode ready',
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return node;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `meshnode ARGS…`; never rejects (the exit code is the result). */
export function cli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
  });
}

/** A long-running `meshnode ARGS…` (`-f`, `--watch`): its output so far, and its exit once signalled. */
export interface CliProcess {
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<number | null>;
}

export function cliProcess(args: string[]): CliProcess {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return {
    proc,
    get stdout() {
      return out;
    },
    get stderr() {
      return err;
    },
    exited,
  };
}

export interface AdminAnswer {
  v: number;
  id: string | number | null;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

/** An admin connection that writes raw bytes and collects every answer line in arrival order. */
export class RawAdmin {
  readonly answers: AdminAnswer[] = [];
  closed = false;
  private buffered = '';

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.answers.push(JSON.parse(this.buffered.slice(0, nl)) as AdminAnswer);
        this.buffered = this.buffered.slice(nl + 1);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(path: string): Promise<RawAdmin> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new RawAdmin(s)));
      s.once('error', reject);
    });
  }

  write(raw: string): void {
    this.socket.write(raw);
  }

  /** Send one request line; resolves with the answer that carries its id. */
  async request(
    method: string,
    params?: Record<string, unknown>,
    id: string | number = `r${Math.random().toString(36).slice(2)}`,
    timeoutMs = 30_000,
  ): Promise<AdminAnswer> {
    this.write(`${JSON.stringify({ v: 1, id, method, ...(params ? { params } : {}) })}\n`);
    return this.answer(id, timeoutMs);
  }

  async answer(id: string | number | null, timeoutMs = 30_000): Promise<AdminAnswer> {
    let found: AdminAnswer | undefined;
    await until(
      () => {
        found = this.answers.find((a) => a.id === id);
        if (!found && this.closed) throw new Error(`connection closed before the answer to ${id}`);
        return found !== undefined;
      },
      timeoutMs,
      `the answer to ${String(id)}`,
    );
    this.answers.splice(this.answers.indexOf(found!), 1);
    return found!;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** `journal verify` over the admin API, followed to its report as the CLI follows it. */
export async function verifyOver(client: AdminClient): Promise<VerifyReport> {
  const end = await followJob((m, p) => client.call(m, p), {
    methods: VERIFY_JOB,
    pollMs: 100,
  });
  if (end.state !== 'done')
    throw new Error(`verify ended ${end.state}: ${JSON.stringify(end.error)}`);
  return end.result as VerifyReport;
}
