/**
 * The test side of test/fixtures/gossip/node-driver: a real node in a child
 * process (optionally inside a network namespace), commanded over its stdin
 * and answering on its stdout, one JSON line each way.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jsonLines } from './process.js';

export const NODE_DRIVER = fileURLToPath(
  new URL('../fixtures/gossip/node-driver.js', import.meta.url),
);

/** How much of a node's stderr (its log) is kept for failure messages. */
const STDERR_KEEP = 64 * 1024;

export class NodeProcess {
  did = '';
  port = 0;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-STDERR_KEEP);
    });
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        for (const w of this.waiting.values()) {
          w.reject(new Error(`${name} exited (${code ?? signal}) before answering`));
        }
        this.waiting.clear();
        resolve({ code, signal });
      }),
    );
  }

  /**
   * Start a node on `stateDir` with this [gossip] section; inside namespace
   * `ns` if given. Resolves once it is up; rejects (and kills it) if it is not
   * within `timeoutMs`.
   */
  static async spawn(
    name: string,
    stateDir: string,
    gossip: Record<string, unknown>,
    opts: { ns?: string; timeoutMs?: number; config?: Record<string, unknown> } = {},
  ): Promise<NodeProcess> {
    const node = [process.execPath, '--enable-source-maps', NODE_DRIVER, stateDir];
    const argv = opts.ns ? ['ip', 'netns', 'exec', opts.ns, ...node] : node;
    const args = [...argv.slice(1), JSON.stringify(gossip), JSON.stringify(opts.config ?? {})];
    const proc = spawn(argv[0]!, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const np = new NodeProcess(name, proc);
    const out = jsonLines(proc);
    const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} not ready within ${opts.timeoutMs ?? 20_000} ms`)),
        opts.timeoutMs ?? 20_000,
      );
      void np.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited while starting: ${np.stderr.slice(-2000)}`));
      });
      proc.stdout!.on('data', () => {
        for (const l of out.lines.splice(0)) {
          if ('ready' in l) {
            clearTimeout(timer);
            if (l.ready === true) resolve(l);
            else reject(new Error(`${name} failed to start: ${String(l.error)}`));
          } else np.lineOnReply(l);
        }
      });
    });
    try {
      const r = await ready;
      np.did = String(r.did);
      np.port = Number(r.port);
    } catch (err) {
      np.kill();
      throw err;
    }
    return np;
  }

  /** Send one command; resolves with its result, rejects with an Error carrying the code. */
  request(cmd: string, data?: unknown, timeoutMs = 30_000): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin!.write(JSON.stringify({ id, cmd, data }) + '\n');
    });
  }

  append(requestId: string, kind: string, body: unknown): Promise<{ seq: number; id: string }> {
    return this.request('append', { requestId, kind, body }) as Promise<{
      seq: number;
      id: string;
    }>;
  }

  ingest(entries: unknown[]): Promise<{ appended: number; duplicates: number }> {
    return this.request('ingest', { entries }) as Promise<{ appended: number; duplicates: number }>;
  }

  heads(): Promise<Record<string, number>> {
    return this.request('heads') as Promise<Record<string, number>>;
  }

  status(): Promise<{ selfSynced: boolean; peers: Array<{ did: string | null; state: string }> }> {
    return this.request('status') as Promise<{
      selfSynced: boolean;
      peers: Array<{ did: string | null; state: string }>;
    }>;
  }

  /** Graceful stop; SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.request('stop', undefined, timeoutMs).catch(() => {});
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  private lineOnReply(l: Record<string, unknown>): void {
    const w = this.waiting.get(Number(l.id));
    if (!w) return;
    this.waiting.delete(Number(l.id));
    if (l.ok) w.resolve(l.result);
    else {
      w.reject(
        Object.assign(new Error(`${this.name}: ${String(l.message)}`), { code: String(l.code) }),
      );
    }
  }
}
