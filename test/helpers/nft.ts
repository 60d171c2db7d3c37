/**
 * Real-nftables fixtures (root only). An NftLab is two network namespaces
 * joined by a veth cable:
 *
 *   srv  10.88.0.1/24  fd88::1/64           the executor (a driver process,
 *                                           test/fixtures/nft/driver.ts) and
 *                                           the services live here
 *   cli  10.88.0.2, .3  fd88::2, fd88::3    peers: one address to grant,
 *                                           one not
 *
 * so every nft command, the executor's and the test's, touches only the
 * lab's own ruleset, never the host's. Names carry this process's pid
 * (`mnnft-PID-…`); namespaces left by a killed run (pid gone) are swept at
 * the next create, and `destroy()` — also run at process exit — deletes
 * both and kills every process the lab started.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../../supervisor/state-lock.js';

const PREFIX = 'mnnft-';
const DRIVER = fileURLToPath(new URL('../fixtures/nft/driver.js', import.meta.url));
const TCP = fileURLToPath(new URL('../fixtures/nft/tcp.js', import.meta.url));

export const SRV4 = '10.88.0.1';
export const SRV6 = 'fd88::1';
export const GRANTED4 = '10.88.0.2';
export const OTHER4 = '10.88.0.3';
export const GRANTED6 = 'fd88::2';
export const OTHER6 = 'fd88::3';

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 512 * 1024 * 1024,
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${cmd} ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

const ip = (...args: string[]) => run('ip', args);

/** Delete lab namespaces whose creating process is gone. */
function sweep(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    const m = /^mnnft-(\d+)-/.exec(ns);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      ip('netns', 'del', ns);
    } catch {
      // Swept by someone else.
    }
  }
}

let labs = 0;

export interface Listing {
  exists: boolean;
  /** set name → elements (canonical as nft prints them) → seconds left */
  sets: Map<string, Map<string, number>>;
  /** rule comments in chain order */
  rules: string[];
}

/** Table `inet TABLE` in namespace `ns` as nft lists it (a fresh `nft -j list table`). */
export function listTable(ns: string, table = 'meshnode'): Listing {
  const out: Listing = { exists: false, sets: new Map(), rules: [] };
  let text: string;
  try {
    text = run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', table]);
  } catch (err) {
    if (/No such file or directory/.test((err as Error).message)) return out;
    throw err;
  }
  out.exists = true;
  for (const obj of (
    JSON.parse(text) as { nftables: Array<Record<string, Record<string, unknown>>> }
  ).nftables) {
    if (obj.set) {
      const elems = new Map<string, number>();
      for (const e of (obj.set.elem ?? []) as Array<
        string | { elem: { val: string; expires?: number } }
      >) {
        if (typeof e === 'string') elems.set(e, Infinity);
        else elems.set(e.elem.val, e.elem.expires ?? Infinity);
      }
      out.sets.set(String(obj.set.name), elems);
    }
    if (obj.rule) out.rules.push(String(obj.rule.comment ?? `(handle ${String(obj.rule.handle)})`));
  }
  return out;
}

export class NftLab {
  readonly srv: string;
  readonly cli: string;
  private readonly procs = new Set<ChildProcess>();
  private destroyed = false;
  private readonly onExit = () => this.destroy();

  private constructor(tag: string) {
    this.srv = `${tag}srv`;
    this.cli = `${tag}cli`;
    process.on('exit', this.onExit);
  }

  static create(): NftLab {
    sweep();
    const lab = new NftLab(`${PREFIX}${process.pid}-${labs++}-`);
    try {
      for (const ns of [lab.srv, lab.cli]) {
        ip('netns', 'add', ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
      ip(
        '-n',
        lab.srv,
        'link',
        'add',
        'eth0',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        lab.cli,
      );
      const addrs: Array<[string, string[]]> = [
        [lab.srv, [`${SRV4}/24`, `${SRV6}/64`]],
        [lab.cli, [`${GRANTED4}/24`, `${OTHER4}/24`, `${GRANTED6}/64`, `${OTHER6}/64`]],
      ];
      for (const [ns, list] of addrs) {
        // nodad: an IPv6 address is usable at once, not after duplicate detection.
        for (const a of list)
          ip('-n', ns, 'addr', 'add', a, 'dev', 'eth0', ...(a.includes(':') ? ['nodad'] : []));
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
      }
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Run nft in the server namespace (argv, or a batch on stdin with `-f -`). */
  nft(args: string[], input?: string): string {
    return run('ip', ['netns', 'exec', this.srv, 'nft', ...args], input);
  }

  /** The executor's table as nft lists it (a fresh `nft -j list table`). */
  list(table = 'meshnode'): Listing {
    return listTable(this.srv, table);
  }

  /** The addresses in one set (empty when the set or table is missing). */
  elements(set: string, table = 'meshnode'): string[] {
    return [...(this.list(table).sets.get(set)?.keys() ?? [])].sort();
  }

  /** A dual-stack TCP server in the server namespace; resolves once it listens. */
  async listen(port: number): Promise<void> {
    const p = this.spawnIn(this.srv, process.execPath, [TCP, 'listen', String(port)]);
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', () => resolve());
      p.once('exit', (code) => reject(new Error(`tcp server exited ${code}`)));
    });
  }

  /**
   * Connect from `from` (a client address) to `to`:port: "ok", "timeout" or "error …". The
   * limit covers a fresh Node process in the namespace too: 700 ms once failed a granted
   * connection on a loaded CI host.
   */
  async connect(from: string, to: string, port: number, timeoutMs = 1500): Promise<string> {
    const p = this.spawnIn(this.cli, process.execPath, [
      TCP,
      'connect',
      to,
      String(port),
      from,
      String(timeoutMs),
    ]);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += String(d)));
    await new Promise((r) => p.once('close', r));
    return out.trim();
  }

  /** Start the executor in the server namespace with these nft actor options. */
  async driver(options: Record<string, unknown>): Promise<Driver> {
    const p = this.spawnIn(this.srv, process.execPath, [
      '--enable-source-maps',
      DRIVER,
      JSON.stringify(options),
    ]);
    return Driver.attach(p);
  }

  spawnIn(ns: string, cmd: string, args: string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    // A test may kill a process while a request is still being written to it.
    p.stdin!.on('error', () => {});
    p.stderr!.on('data', (d: Buffer) => {
      if (process.env.MESHNODE_TEST_VERBOSE) process.stderr.write(d);
    });
    return p;
  }

  /** Kill what the lab started and delete both namespaces; safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const p of this.procs) p.kill('SIGKILL');
    for (const ns of [this.srv, this.cli]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not created, or already gone.
      }
    }
  }

  /** Processes running in namespace `ns`. */
  pids(ns: string): number[] {
    return ip('netns', 'pids', ns)
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  /** Lab namespaces that still exist. */
  remaining(): string[] {
    return ip('netns', 'list')
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((ns) => ns === this.srv || ns === this.cli);
  }
}

export interface DriverError extends Error {
  code: string;
}

/** The executor running in a driver process: asks as grants or admin, crash commands. */
export class Driver {
  private next = 1;
  private readonly waiting = new Map<number, (line: Record<string, unknown>) => void>();
  private exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  }

  static async attach(proc: ChildProcess): Promise<Driver> {
    const d = new Driver(proc);
    // What it said before dying: a start refused is asserted by its code.
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192)));
    const lines = createInterface({ input: proc.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (text) => {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return; // the last line of a driver killed while writing it
        }
        if (line.ready) return resolve();
        d.waiting.get(line.id as number)?.(line);
        d.waiting.delete(line.id as number);
      });
      void d.exited.then((code) =>
        reject(new Error(`driver exited ${code} before ready: ${stderr}`)),
      );
    });
    await ready;
    return d;
  }

  ask(
    as: 'grants' | 'admin',
    action: string,
    data?: unknown,
    timeoutMs = 30_000,
  ): Promise<unknown> {
    return this.send({ as, action, data, timeoutMs });
  }

  cmd(cmd: 'kill' | 'info'): Promise<unknown> {
    return this.send({ cmd });
  }

  /** Write a request without waiting for its answer (for kills mid-request). */
  fire(as: 'grants' | 'admin', action: string, data?: unknown): void {
    this.proc.stdin!.write(`${JSON.stringify({ id: this.next++, as, action, data })}\n`);
  }

  /** SIGKILL the driver process (the executor with it) and wait for it to be gone. */
  async kill(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful stop: stdin closed, the supervisor stops its actors. */
  async stop(): Promise<void> {
    this.proc.stdin!.end();
    await this.exited;
  }

  private send(msg: Record<string, unknown>): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (line) => {
        if (line.ok) resolve(line.value);
        else
          reject(
            Object.assign(new Error(String(line.message)), { code: line.code }) as DriverError,
          );
      });
      this.proc.stdin!.write(`${JSON.stringify({ id, ...msg })}\n`);
    });
  }
}
