/**
 * The admin API: line-delimited JSON on a Unix socket (mode 0600, or 0660
 * with an operator group), what the CLI and the console speak.
 *
 *   → {"v":1,"id":"7","method":"grants.approve","params":{"subscription":"…"}}
 *   ← {"v":1,"id":"7","ok":true,"result":{…}}
 *   ← {"v":1,"id":"7","ok":false,"error":{"code":"ERR_…","message":"…"}}
 *
 * Requests on one connection may be answered out of order (match by id).
 * Every request is validated; a bad one gets ERR_BAD_REQUEST and the
 * connection stays usable, except a line over MAX_LINE_BYTES, which closes
 * it (we cannot tell where the next request starts). Every method that
 * changes something (restart, kill, stop, log level, and the forwards
 * marked `audited`: offer, approve, revoke, expel, …) is written to the
 * admin audit log with the caller's uid as the OS reports it (see peer-cred.ts), and
 * the uid the client claims (under the hardened unit, ProtectProc=invisible
 * hides other users' processes from the node, so the OS answer can be null;
 * the socket's mode already limits callers to the node's user, its group and
 * root).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { AuditLog, verifyAuditLog } from '../runtime/audit-log.js';
import { E, tooDeep, toPayload } from '../runtime/errors.js';
import { jsonDepth } from '../runtime/json-depth.js';
import { LineReader } from '../runtime/lines.js';
import {
  ADMIN_PROTOCOL,
  FORWARDS,
  actorParam,
  adminRequestSchema,
  levelParam,
  traceParam,
} from '../runtime/protocol/admin.js';
import type { AdminRequest, MeshSummary } from '../runtime/protocol/admin.js';
import { checkRequest, parseWith } from '../runtime/protocol/define.js';
import type { Membership } from '../runtime/domain/membership.js';
import type { GossipStatusAnswer } from '../runtime/protocol/gossip.js';
import { actionSpec } from '../runtime/protocol/index.js';
import { OBSERVER_TAGS } from '../runtime/types.js';

/** The `inspect` answer: what the supervisor knows of an actor beside what the actor says. */
export type InspectAnswer = { supervision: ChildInfo | null } & ActorInspect;

/** An ask's tags (OBSERVER_TAGS for an observer's read). */
type Tags = Readonly<Record<string, string>>;
import { PACKAGE_VERSION } from './config-values.js';
import { peerUid } from './peer-cred.js';
import type { ChildInfo, Supervisor } from './supervisor.js';
import type { ActorInspect } from '../runtime/types.js';

export { ADMIN_PROTOCOL };
/** A request line longer than this is not a request. */
const MAX_LINE_BYTES = 1024 * 1024;
/** Concurrent admin connections; the console holds one, scripts a few. */
const MAX_CONNECTIONS = 32;
/** After refusing an oversize line, the connection is destroyed this long after our end. */
const CLOSE_GRACE_MS = 1000;
/** The asks behind `status`: it must answer even while an actor is down or busy. */
const SUMMARY_TIMEOUT_MS = 1000;
/** Asks on behalf of the admin API wait at most this long (verify of a big journal is slow). */
const ASK_TIMEOUT_MS = 120_000;
/**
 * Requests one connection may have under way; past it the connection's
 * further lines wait (reading pauses), they are not refused. With the
 * total bound below, what admin clients can make the node hold is bounded:
 * 32 connections x 100 `journal.heads` of 732 KB once took RSS to 4.7 GB
 * and starved every actor's heartbeat.
 */
const MAX_IN_FLIGHT_PER_CONNECTION = 4;
/** Requests under way over all connections; past it, lines wait. */
const MAX_IN_FLIGHT_TOTAL = 32;
/** Lines read and waiting on one connection before it stops being read. */
const MAX_QUEUED_LINES = 64;
/** Answers not yet taken by a client: past this, its next requests wait. */
const MAX_UNREAD_REPLY_BYTES = 1024 * 1024;
/** Deepest JSON nesting in a request line (a 50k-deep param used to overflow the stack). */
const MAX_REQUEST_DEPTH = 32;

/** One admin connection's queue of request lines. */
interface Connection {
  socket: Socket;
  queue: string[];
  inFlight: number;
}

export interface AdminOptions {
  socketPath: string;
  /** Group name for a 0660 socket; '' keeps it 0600. */
  group: string;
  auditPath: string;
}

export class AdminServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly connections = new Set<Connection>();
  private inFlight = 0;
  private readonly audit: AuditLog;

  constructor(
    private readonly sup: Supervisor,
    private readonly options: AdminOptions,
  ) {
    this.audit = new AuditLog(options.auditPath);
  }

  async listen(): Promise<void> {
    const path = this.options.socketPath;
    checkAdminOptions(this.options);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // A socket file left by a dead node is ours to replace: the state lock
    // (taken before this) proves no other node runs on this state directory.
    if (existsSync(path)) unlinkSync(path);
    const server = createServer((socket) => this.serverOnConnection(socket));
    server.maxConnections = MAX_CONNECTIONS;
    const oldMask = process.umask(0o177); // the socket is born 0600: no window where others can connect
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    // Held from here on, so close() releases it even if the group step below fails.
    this.server = server;
    if (this.options.group !== '') {
      // Under the unit the socket already has the service's group; chown
      // (blocked by its syscall filter) is only needed for another group.
      const gid = groupId(this.options.group);
      if (gid !== process.getgid?.()) chownSync(path, process.getuid?.() ?? 0, gid);
      chmodSync(path, 0o660);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.audit.close();
  }

  private serverOnConnection(socket: Socket): void {
    const conn: Connection = { socket, queue: [], inFlight: 0 };
    this.sockets.add(socket);
    this.connections.add(conn);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.connections.delete(conn);
    });
    socket.on('error', () => {});
    // Our answers the client has not read: once it reads, waiting lines go on.
    socket.on('drain', () => this.pump());
    const lines = new LineReader((line) => {
      if (line.trim() !== '') conn.queue.push(line);
    }, MAX_LINE_BYTES);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      // Past an oversize line nothing more is read: what follows is not a request either.
      if (lines.oversize) return;
      const fine = lines.push(chunk);
      if (conn.queue.length >= MAX_QUEUED_LINES) socket.pause();
      this.pump();
      if (fine) return;
      this.reply(socket, null, {
        code: 'ERR_BAD_REQUEST',
        message: `request line over ${MAX_LINE_BYTES} bytes`,
      });
      socket.end();
      // A client that keeps its end open (or keeps sending) does not keep the slot.
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    });
  }

  /** Start waiting lines, within the per-connection, total and unread-answer bounds. */
  private pump(): void {
    for (const conn of this.connections) {
      while (
        conn.queue.length > 0 &&
        conn.inFlight < MAX_IN_FLIGHT_PER_CONNECTION &&
        this.inFlight < MAX_IN_FLIGHT_TOTAL &&
        conn.socket.writableLength < MAX_UNREAD_REPLY_BYTES
      ) {
        const line = conn.queue.shift()!;
        conn.inFlight++;
        this.inFlight++;
        void this.socketOnLine(conn.socket, line).finally(() => {
          conn.inFlight--;
          this.inFlight--;
          this.pump();
        });
      }
      if (conn.queue.length < MAX_QUEUED_LINES / 2 && conn.socket.isPaused()) conn.socket.resume();
    }
  }

  private async socketOnLine(socket: Socket, line: string): Promise<void> {
    let id: string | number | null = null;
    let method = '?';
    const started = performance.now();
    try {
      if (jsonDepth(line) > MAX_REQUEST_DEPTH) {
        throw tooDeep('request', MAX_REQUEST_DEPTH);
      }
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        throw E.ERR_BAD_REQUEST('request is not JSON');
      }
      const rawId = (raw as { id?: unknown })?.id;
      if (typeof rawId === 'string' || typeof rawId === 'number') id = rawId;
      const req = parseWith(adminRequestSchema, raw, '');
      method = req.method;
      const result = await this.dispatch(req, socket);
      this.reply(socket, id, undefined, result);
      this.sup.log.debug({ method, ms: elapsed(started) }, 'admin request answered');
    } catch (err) {
      const payload = toPayload(err);
      this.reply(socket, id, payload);
      this.sup.log.debug(
        { method, ms: elapsed(started), code: payload.code, err: payload.message.slice(0, 200) },
        'admin request refused',
      );
    }
  }

  private async dispatch(req: AdminRequest, socket: Socket): Promise<unknown> {
    const params = req.params ?? {};
    // Own keys only: `toString`, `constructor`, … match the method pattern too.
    const forward = Object.hasOwn(FORWARDS, req.method) ? FORWARDS[req.method] : undefined;
    if (forward) {
      const { actor, action, audited } = forward;
      // The action's own declaration checks the params (runtime/protocol/), here and
      // again where it arrives; checked before it is audited: a refused request changed nothing.
      const check = actionSpec(actor, action)?.request;
      const data: unknown = check ? checkRequest(check, params, 'params') : params;
      if (audited) await this.record(req, socket);
      // An observer's read is left out of the actor's counts; a change never is.
      const tags = req.observer && !audited ? OBSERVER_TAGS : undefined;
      return this.sup.ask(actor, action, data, {
        timeoutMs: ASK_TIMEOUT_MS,
        ...(tags && { tags }),
      });
    }
    const tags = req.observer ? OBSERVER_TAGS : undefined;
    switch (req.method) {
      case 'status':
        return {
          protocol: ADMIN_PROTOCOL,
          version: PACKAGE_VERSION,
          did: await this.nodeDid(tags),
          pid: process.pid,
          uptime: process.uptime(),
          firewall: await this.firewallSummary(tags),
          actors: this.sup.info(),
          gossip: await this.gossipSummary(tags),
          mesh: await this.meshSummary(tags),
          grants: await this.grantsSummary(tags),
        };
      case 'actors':
        return this.actors();
      case 'audit.verify':
        return this.auditVerify();
      case 'inspect': {
        // What the supervisor knows (state, restarts, the last exit) beside what the actor says.
        const { actor } = parseParams(actorParam, params);
        const inspected = await this.sup.inspect(actor);
        const answer: InspectAnswer = {
          supervision: this.sup.info().find((i) => i.name === actor) ?? null,
          ...inspected,
        };
        return answer;
      }
      case 'restart': {
        const { actor } = parseParams(actorParam, params);
        await this.record(req, socket);
        await this.sup.restart(actor);
        return { restarted: actor };
      }
      case 'kill': {
        const { actor } = parseParams(actorParam, params);
        await this.record(req, socket);
        await this.sup.kill(actor, 'killed by the operator');
        return { killed: actor };
      }
      case 'stop':
        await this.record(req, socket);
        setImmediate(() => void this.sup.stop('admin stop'));
        return { stopping: true };
      case 'logLevel': {
        const { level } = parseParams(levelParam, params);
        await this.record(req, socket);
        await this.sup.setLogLevel(level);
        return { level };
      }
      case 'trace': {
        const { actor, count, ms } = parseParams(traceParam, params);
        return this.sup.trace(actor, count, ms);
      }
      default:
        throw E.ERR_BAD_REQUEST(`unknown method ${req.method}`);
    }
  }

  /** The node's DID (null while the journal, which holds the key, is down). */
  /** A summary's ask: short (status must answer while an actor is down), an observer's if asked so. */
  private summaryOptions(tags: Tags | undefined): { timeoutMs: number; tags?: Tags } {
    return tags ? { timeoutMs: SUMMARY_TIMEOUT_MS, tags } : { timeoutMs: SUMMARY_TIMEOUT_MS };
  }

  private async nodeDid(tags?: Tags): Promise<string | null> {
    try {
      return (
        (await this.sup.ask('journal', 'identity', undefined, this.summaryOptions(tags))) as {
          did: string;
        }
      ).did;
    } catch {
      return null;
    }
  }

  /** Which backend the nft executor runs, so `status` says whether anything is enforced. */
  private async firewallSummary(tags?: Tags): Promise<{
    backend: string;
    enforced: boolean;
    why: string;
  } | null> {
    try {
      const st = (await this.sup.ask('nft', 'status', undefined, this.summaryOptions(tags))) as {
        backend?: string;
        why?: string;
      };
      const backend = st.backend ?? 'unknown';
      return { backend, enforced: backend === 'nft', why: st.why ?? '' };
    } catch {
      return null;
    }
  }

  /** How the node's links are secured and where it listens (null while gossip is down). */
  private async gossipSummary(
    tags?: Tags,
  ): Promise<{ transport: string; listening: number } | null> {
    try {
      const g = (await this.sup.ask(
        'gossip',
        'status',
        undefined,
        this.summaryOptions(tags),
      )) as GossipStatusAnswer;
      return 'transport' in g ? { transport: g.transport, listening: g.listening } : null;
    } catch {
      return null;
    }
  }

  /** The mesh this node belongs to, as `status` shows it (null while the journal is down). */
  private async meshSummary(tags?: Tags): Promise<MeshSummary | null> {
    try {
      const m = (await this.sup.ask(
        'journal',
        'membership',
        undefined,
        this.summaryOptions(tags),
      )) as Membership;
      return {
        id: m.mesh,
        name: m.name,
        admission: m.admission,
        known: m.known,
        members: m.members.length,
        expelled: m.cuts.length,
      };
    } catch {
      return null;
    }
  }

  /** The offers that grant any source (relaxing the record's mesh-IP check): `status` says so. */
  private async grantsSummary(tags?: Tags): Promise<{ anySource: string[] } | null> {
    try {
      const g = (await this.sup.ask('grants', 'status', undefined, this.summaryOptions(tags))) as {
        anySource?: string[];
      };
      return { anySource: g.anySource ?? [] };
    } catch {
      return null;
    }
  }

  /** Every actor's supervision info with its live stats (what the console's table shows). */
  private async actors(): Promise<unknown[]> {
    return Promise.all(
      this.sup.info().map(async (info) => {
        try {
          return { ...info, stats: await this.sup.stats(info.name, 1000) };
        } catch {
          return { ...info, stats: null };
        }
      }),
    );
  }

  /** An operator's change: fsynced to the admin audit log, and a line in the node log, before it runs. */
  private async record(req: AdminRequest, socket: Socket): Promise<void> {
    const uid = await peerUid(socket);
    const params = req.params ?? {};
    const { seq } = this.audit.append({
      kind: 'admin',
      method: req.method,
      params,
      uid,
      claimedUid: req.caller?.uid ?? null,
    });
    // Params come from the operator (a local, trusted caller); an invite token is a bearer secret.
    const { token: _secret, ...shown } = params;
    this.sup.log.info({ method: req.method, params: shown, uid, audit: seq }, 'operator action');
  }

  /** Both hash-chained audit logs, checked from their first line (`meshnode audit verify`). */
  private async auditVerify(): Promise<unknown> {
    const admin = { path: this.options.auditPath, ...verifyAuditLog(this.options.auditPath) };
    let grants: unknown;
    try {
      grants = await this.sup.ask('grants', 'auditVerify', undefined, {
        timeoutMs: ASK_TIMEOUT_MS,
      });
    } catch (err) {
      grants = { ok: false, reason: `grants actor did not answer: ${(err as Error).message}` };
    }
    return { admin, grants };
  }

  private reply(
    socket: Socket,
    id: string | number | null,
    error?: { code: string; message: string },
    result?: unknown,
  ): void {
    if (socket.destroyed) return;
    const body = error
      ? { v: ADMIN_PROTOCOL, id, ok: false, error }
      : { v: ADMIN_PROTOCOL, id, ok: true, result: result ?? null };
    socket.write(`${JSON.stringify(body)}\n`);
  }
}

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 100) / 100;
}

function parseParams<T>(schema: z.ZodType<T>, params: unknown): T {
  return parseWith(schema, params, 'params');
}

/** Kernel pseudo-filesystems: no socket can live there (and Node's recursive mkdir spun on /proc). */
const PSEUDO_FS = /^\/(proc|sys|dev)(\/|$)/;

/**
 * What can be known about the admin options before any actor starts: the
 * socket's place and the group. A failure names the field, and the daemon
 * exits non-zero without starting anything.
 */
export function checkAdminOptions(options: Pick<AdminOptions, 'socketPath' | 'group'>): void {
  if (PSEUDO_FS.test(options.socketPath)) {
    throw E.ERR_INVALID_CONFIG(
      `admin.socket ${options.socketPath} is on a kernel pseudo-filesystem (/proc, /sys, /dev)`,
    );
  }
  if (options.group !== '') groupId(options.group);
}

/** The numeric id of a group by name, from /etc/group. */
function groupId(name: string): number {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [g, , gid] = line.split(':');
    if (g === name) return Number(gid);
  }
  throw E.ERR_INVALID_CONFIG(`admin.group ${name} is not a group on this system`);
}
