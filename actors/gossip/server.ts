/**
 * The gossip listener: one TCP server we own, TLS 1.3 (or plain HTTP on
 * loopback with insecure_plaintext) on top, and the WebSocket upgrade at
 * the configured path. Everything else an HTTP client asks is refused.
 *
 * Why the TCP server is ours: a connection is counted (and cut if it never
 * upgrades) before TLS or HTTP sees a byte of it. Node's header timeout does
 * not cut a client that connects and sends nothing, and every held socket
 * is a file descriptor of the whole node.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { E } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { TLS_PINNED, sniffTls } from './tls.js';
import type { TlsMaterial } from './tls.js';

export interface ServerOptions {
  /** host:port. */
  listen: string;
  path: string;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  /** Connections not yet upgraded (and peers still handshaking) at most. */
  maxPendingHandshakes: number;
}

/** What the listener needs from the mesh. */
export interface ServerHost {
  readonly stopped: boolean;
  /** Whether one more peer may start a handshake now (slots, pending handshakes). */
  roomForHandshake(): boolean;
  /** An upgraded connection: the mesh makes it a peer. */
  serverOnSocket(ws: WebSocket, address: string): void;
  /** A connection refused before it became a peer (counted). */
  serverOnRefused(): void;
}

export class GossipServer {
  /** The port we listen on (0 until listening). */
  port = 0;
  private tcp: TcpServer | undefined;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  /** Accepted TCP connections that have not asked for the upgrade yet, with their deadlines. */
  private readonly unupgraded = new Map<Duplex, NodeJS.Timeout>();

  constructor(
    private readonly host: ServerHost,
    private readonly options: ServerOptions,
    private readonly tls: TlsMaterial | undefined,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    const { host, port } = parseHostPort(this.options.listen);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxFrameBytes,
      perMessageDeflate: false,
    });
    const answer426: Parameters<typeof createHttpServer>[1] = (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('meshnode gossip: WebSocket only\n');
    };
    const server = this.tls
      ? createHttpsServer({ ...this.tls, ...TLS_PINNED }, answer426)
      : createHttpServer(answer426);
    this.server = server;
    server.headersTimeout = this.options.handshakeTimeoutMs;
    server.requestTimeout = this.options.handshakeTimeoutMs;
    server.on('upgrade', (req, socket, head) => this.serverOnUpgrade(req, socket, head));
    // A failed TLS handshake (TLS 1.2 client, garbage) ends that socket only.
    server.on('tlsClientError', (_err, socket: Duplex) => socket.destroy());
    this.tcp = createTcpServer((socket) => this.tcpOnConnection(socket));
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(port, host, () => resolve());
    });
    const addr = this.tcp.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    this.log.info(
      { host, port: this.port, path: this.options.path, tls: Boolean(this.tls) },
      'gossip listening',
    );
  }

  async close(): Promise<void> {
    this.wss?.close();
    this.server?.close();
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
  }

  /**
   * A connection that has not asked for the upgrade within a handshake
   * timeout is cut, and past maxPendingHandshakes of them a new one is cut
   * at once.
   */
  private tcpOnConnection(socket: Socket): void {
    socket.on('error', () => {});
    if (this.host.stopped || this.unupgraded.size >= this.options.maxPendingHandshakes) {
      this.host.serverOnRefused();
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs);
    timer.unref();
    this.unupgraded.set(socket, timer);
    socket.once('close', () => this.settleConnection(socket));
    if (!this.tls) return void this.server!.emit('connection', socket);
    sniffTls(socket, (s) => this.server!.emit('connection', s));
  }

  private settleConnection(socket: Duplex): void {
    clearTimeout(this.unupgraded.get(socket));
    this.unupgraded.delete(socket);
  }

  private serverOnUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Over TLS the upgrade comes on the TLS socket; the deadline is on the TCP one under it.
    this.settleConnection((socket as Duplex & { _parent?: Duplex })._parent ?? socket);
    socket.on('error', () => {});
    const reject = (status: number, text: string) => {
      this.host.serverOnRefused();
      // Closed once written: a refused client that never hangs up holds nothing.
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        () => socket.destroy(),
      );
    };
    if ((req.url ?? '').split('?')[0] !== this.options.path) return reject(404, 'Not Found');
    if (this.host.stopped) return reject(503, 'Service Unavailable');
    if (!this.host.roomForHandshake()) return reject(503, 'Service Unavailable');
    this.wss!.handleUpgrade(req, socket, head, (ws) => {
      this.host.serverOnSocket(ws, req.socket.remoteAddress ?? '?');
    });
  }
}

/** "host:port" or "[v6]:port". */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) > 65535) {
    throw E.ERR_INVALID_OPTION(`listen address ${s} must be host:port`);
  }
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}
