/**
 * The retained heap of every isolate of a node process, from outside: the
 * node runs with `--inspect=127.0.0.1:PORT` (NODE_OPTIONS), and this client
 * speaks the inspector protocol to its main thread and, through the
 * `NodeWorker` domain, to each worker thread (actors, the warm spare, pool
 * threads). `collect()` runs a full GC in every isolate
 * (`HeapProfiler.collectGarbage`) and then reads its heap
 * (`Runtime.getHeapUsage`): what is still used is what is retained, not
 * where the GC sawtooth happened to be.
 */
import WebSocket from 'ws';

/** Post-GC used heap, bytes, by thread id (0: the main thread). */
export type HeapByThread = Map<number, number>;

interface Pending {
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class Isolates {
  private id = 0;
  private readonly pending = new Map<string, Pending>();
  /** Inspector session id → worker thread id. */
  private readonly workers = new Map<string, number>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => {
      for (const [k, p] of this.pending) p.reject(new Error(`inspector closed (${k})`));
      this.pending.clear();
    });
  }

  static async connect(port: number): Promise<Isolates> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
      webSocketDebuggerUrl: string;
    }>;
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const isolates = new Isolates(ws);
    await isolates.call(null, 'NodeWorker.enable', { waitForDebuggerOnStart: false });
    return isolates;
  }

  /** Full GC in every isolate, then each one's used heap. */
  async collect(timeoutMs = 5000): Promise<HeapByThread> {
    const out: HeapByThread = new Map();
    const one = async (session: string | null, thread: number) => {
      try {
        await this.call(session, 'HeapProfiler.collectGarbage', {}, timeoutMs);
        const u = (await this.call(session, 'Runtime.getHeapUsage', {}, timeoutMs)) as {
          usedSize: number;
        };
        out.set(thread, u.usedSize);
      } catch {
        // A worker that ended meanwhile (a pool thread retiring): not a sample.
      }
    };
    await Promise.all([
      one(null, 0),
      ...[...this.workers].map(([session, thread]) => one(session, thread)),
    ]);
    return out;
  }

  close(): void {
    this.ws.close();
  }

  /** One protocol call, to the main thread (`session` null) or to a worker's session. */
  private call(
    session: string | null,
    method: string,
    params: Record<string, unknown> = {},
    timeoutMs = 5000,
  ): Promise<unknown> {
    const id = ++this.id;
    const key = session === null ? `${id}` : `${session}:${id}`;
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
    });
    const message = { id, method, params };
    this.ws.send(
      JSON.stringify(
        session === null
          ? message
          : {
              id: ++this.id,
              method: 'NodeWorker.sendMessageToWorker',
              params: { sessionId: session, message: JSON.stringify(message) },
            },
      ),
    );
    return result;
  }

  private settle(key: string, m: { result?: unknown; error?: { message: string } }): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    if (m.error) p.reject(new Error(m.error.message));
    else p.resolve(m.result);
  }

  private onMessage(raw: string): void {
    const m = JSON.parse(raw) as {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: unknown;
      error?: { message: string };
    };
    if (m.id !== undefined) return this.settle(`${m.id}`, m);
    const p = m.params ?? {};
    switch (m.method) {
      case 'NodeWorker.attachedToWorker': {
        // The title is "[worker N]", N the worker's threadId.
        const title = String((p.workerInfo as { title?: string } | undefined)?.title ?? '');
        const thread = Number(/(\d+)/.exec(title)?.[1] ?? -1);
        this.workers.set(String(p.sessionId), thread);
        break;
      }
      case 'NodeWorker.detachedFromWorker':
        this.workers.delete(String(p.sessionId));
        break;
      case 'NodeWorker.receivedMessageFromWorker': {
        const inner = JSON.parse(String(p.message)) as {
          id?: number;
          result?: unknown;
          error?: { message: string };
        };
        if (inner.id !== undefined) this.settle(`${String(p.sessionId)}:${inner.id}`, inner);
        break;
      }
      default:
        // Other inspector events are not ours to handle.
        break;
    }
  }
}
