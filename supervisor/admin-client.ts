/**
 * The admin API's client side (the CLI and the console): one connection,
 * requests with ids, answers matched by id. A node that is not running is
 * its own error (ERR_NOT_RUNNING), so the CLI can exit with its own code.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { E, errorFromPayload } from '../runtime/errors.js';
import { LineReader } from '../runtime/lines.js';
import { ADMIN_PROTOCOL } from '../runtime/protocol/admin.js';

export class AdminClient {
  private nextId = 1;
  private readonly lines = new LineReader((line) => this.socketOnLine(line));
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  /** The connection is gone (the node stopped, or close()): every further call fails at once. */
  closed = false;

  /**
   * `observer`: every call is a read made to watch the node (the console),
   * which its actors leave out of their counts and traces.
   */
  private constructor(
    private readonly socket: Socket,
    private readonly observer: boolean,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.lines.push(chunk));
    // An error (EPIPE when the node went away) is followed by 'close', which settles the callers.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(E.ERR_NOT_RUNNING('the node closed the admin connection'));
      }
      this.waiting.clear();
    });
  }

  static connect(path: string, options: { observer?: boolean } = {}): Promise<AdminClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new AdminClient(socket, options.observer === true)));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const gone = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
        reject(
          gone
            ? E.ERR_NOT_RUNNING(`no node is listening on ${path}`)
            : E.ERR_ADMIN(`cannot connect to ${path}: ${err.message}`),
        );
      });
    });
  }

  call(
    method: string,
    params: Record<string, unknown> = {},
    timeoutMs = 130_000,
  ): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(E.ERR_NOT_RUNNING('the admin connection is closed'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(E.ERR_TIMEOUT(`${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      const caller = { uid: process.getuid?.() ?? 0 };
      const req = { v: ADMIN_PROTOCOL, id, method, params, caller };
      this.socket.write(`${JSON.stringify(this.observer ? { ...req, observer: true } : req)}\n`);
    });
  }

  close(): void {
    this.socket.end();
  }

  /** Drop the connection now: calls still waiting fail with ERR_NOT_RUNNING. */
  destroy(): void {
    this.socket.destroy();
  }

  private socketOnLine(line: string): void {
    {
      let msg: {
        id?: number;
        ok?: boolean;
        result?: unknown;
        error?: { code: string; message: string };
      };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const w = typeof msg.id === 'number' ? this.waiting.get(msg.id) : undefined;
      if (!w) return;
      this.waiting.delete(msg.id!);
      clearTimeout(w.timer);
      if (msg.ok) w.resolve(msg.result);
      else
        w.reject(
          errorFromPayload(
            { code: msg.error?.code ?? 'ERR_ADMIN', message: msg.error?.message ?? 'refused' },
            'ERR_ADMIN',
          ),
        );
    }
  }
}
