/**
 * The data plane of one thread: its links (one MessagePort per neighbour),
 * its outgoing asks and the replies that settle them. Used by every actor's
 * worker and by the supervisor's `admin` endpoint on the main thread.
 *
 * Settling guarantees (the reason this file is careful):
 *  - every ask settles exactly once: reply, ERR_TIMEOUT, ERR_ACTOR_EXITED,
 *    ERR_MAILBOX_FULL or ERR_NO_ROUTE;
 *  - when the peer's worker dies, Node closes the entangled port and emits
 *    'close' here at once (measured: within ~1 ms of the worker's 'exit',
 *    for throw, unhandled rejection, process.exit, terminate and OOM), so
 *    asks sent to the dead instance reject with ERR_ACTOR_EXITED without
 *    waiting for the supervisor;
 *  - asks made while the peer is down (restarting) are queued, bounded, and
 *    sent to the new instance when the supervisor re-wires the link; they
 *    still time out on their own deadline.
 *
 * Timeouts use one timer per endpoint armed for the earliest deadline rather
 * than a setTimeout per ask: creating and clearing a timer per message costs
 * more than the rest of an ask's bookkeeping together.
 */
import { receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import {
  actorExited,
  errorFromPayload,
  mailboxFull,
  noRoute,
  timeout,
  toPayload,
} from './errors.js';
import { ASK, REPLY, REPLY_ERROR, TELL } from './types.js';
import { fromWire, requestWire } from './wire.js';
import type { Wire } from './wire.js';
import type { Envelope, LinkState } from './types.js';

export interface AskOptions {
  timeoutMs?: number;
  tags?: Record<string, string>;
}

export interface EndpointOptions {
  name: string;
  /** Every name this endpoint may address; anything else is ERR_NO_ROUTE. */
  peers: readonly string[];
  askTimeoutMs: number;
  /** Outgoing messages held per link while the peer is not connected. */
  queueLimit: number;
}

/** Incoming tells and asks go here, with the sender the channel proves. */
export type RequestSink = (env: Envelope, sender: string) => void;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  deadline: number;
  action: string;
  timeoutMs: number;
  /** False while queued for a peer that is not connected yet. */
  sent: boolean;
}

interface Link {
  peer: string;
  state: LinkState;
  port: MessagePort | null;
  pending: Map<number, Pending>;
  queue: Wire[];
}

export class Endpoint {
  readonly name: string;
  deadLetters = 0;
  /** Set by the owner (the actor's dispatcher, or the admin endpoint). */
  onRequest: RequestSink = (env, sender) => {
    this.deadLetters++;
    if (env.k === ASK) this.replyError(env, sender, noRoute(sender, this.name));
  };

  private readonly links = new Map<string, Link>();
  private readonly askTimeoutMs: number;
  private readonly queueLimit: number;
  private nextId = 1;
  private pendingCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerDeadline = Infinity;

  constructor(options: EndpointOptions) {
    this.name = options.name;
    this.askTimeoutMs = options.askTimeoutMs;
    this.queueLimit = options.queueLimit;
    for (const peer of options.peers) this.addPeer(peer);
  }

  /** Allow a new neighbour (the admin endpoint learns actors as they start). */
  addPeer(peer: string): void {
    if (this.links.has(peer)) return;
    this.links.set(peer, { peer, state: 'waiting', port: null, pending: new Map(), queue: [] });
  }

  /** Attach the port for a peer: first wiring, or re-wiring after its restart. */
  attach(peer: string, port: MessagePort): void {
    const link = this.links.get(peer);
    if (!link) throw noRoute(this.name, peer);
    if (link.port) this.dropPort(link, link.port);
    link.port = port;
    link.state = 'up';
    port.on('message', (wire: Wire) => this.portOnMessage(link, wire));
    port.on('close', () => this.portOnClose(link, port));
    this.flush(link);
  }

  /**
   * The supervisor says the peer's worker exited. Port 'close' normally got
   * here first; this covers the rest. `final`: no instance will follow.
   */
  peerDown(peer: string, final: boolean): void {
    const link = this.links.get(peer);
    if (!link) return;
    if (link.port) this.dropPort(link, link.port);
    link.state = final ? 'gone' : 'down';
    this.rejectPending(link, final);
  }

  tell(to: string, action: string, data?: unknown, tags?: Record<string, string>): boolean {
    const link = this.links.get(to);
    if (!link || link.state === 'gone') {
      this.deadLetters++;
      return false;
    }
    return this.send(link, requestWire(TELL, this.nextId++, action, data, tags));
  }

  ask(to: string, action: string, data?: unknown, options?: AskOptions): Promise<unknown> {
    const link = this.links.get(to);
    if (!link) return Promise.reject(noRoute(this.name, to));
    if (link.state === 'gone') return Promise.reject(actorExited(to, action));
    const id = this.nextId++;
    const wire = requestWire(ASK, id, action, data, options?.tags);
    const timeoutMs = options?.timeoutMs ?? this.askTimeoutMs;
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      const pending: Pending = { resolve, reject, deadline, action, timeoutMs, sent: false };
      if (link.state !== 'up' && link.queue.length >= this.queueLimit) {
        reject(mailboxFull(to, this.queueLimit));
        return;
      }
      link.pending.set(id, pending);
      this.pendingCount++;
      this.armTimer(deadline);
      pending.sent = this.send(link, wire);
    });
  }

  /** Answer an ask. A reply to a peer that went away is a dead letter. */
  reply(ask: Envelope, sender: string, data: unknown): void {
    const port = this.links.get(sender)?.port;
    if (!port) {
      this.deadLetters++;
      return;
    }
    port.postMessage([REPLY, this.nextId++, ask.action, Date.now(), data, ask.id] satisfies Wire);
  }

  replyError(ask: Envelope, sender: string, err: unknown): void {
    const port = this.links.get(sender)?.port;
    if (!port) {
      this.deadLetters++;
      return;
    }
    const error = toPayload(err);
    const wire: Wire = [
      REPLY_ERROR,
      this.nextId++,
      ask.action,
      Date.now(),
      undefined,
      ask.id,
      undefined,
      error,
    ];
    port.postMessage(wire);
  }

  /** Link table for the inspector. */
  describeLinks(): Array<{ peer: string; state: LinkState; pending: number; queued: number }> {
    return [...this.links.values()].map((l) => ({
      peer: l.peer,
      state: l.state,
      pending: l.pending.size,
      queued: l.queue.length,
    }));
  }

  get pendingAsks(): number {
    return this.pendingCount;
  }

  /** Close every port and reject everything outstanding (the endpoint is going away). */
  close(): void {
    for (const link of this.links.values()) {
      if (link.port) this.dropPort(link, link.port);
      link.state = 'gone';
      this.rejectPending(link, true);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private send(link: Link, wire: Wire): boolean {
    if (link.port) {
      link.port.postMessage(wire);
      return true;
    }
    if (link.queue.length >= this.queueLimit) {
      this.deadLetters++;
      return false;
    }
    link.queue.push(wire);
    return false;
  }

  private portOnMessage(link: Link, wire: Wire): void {
    const k = wire[0];
    if (k === REPLY || k === REPLY_ERROR) {
      const ref = wire[5]!;
      const pending = link.pending.get(ref);
      if (!pending) {
        // A late reply to an ask that already timed out or was rejected.
        this.deadLetters++;
        return;
      }
      this.settle(link, ref);
      if (k === REPLY) pending.resolve(wire[4]);
      else pending.reject(errorFromPayload(wire[7]!));
      return;
    }
    this.onRequest(fromWire(wire, link.peer, this.name), link.peer);
  }

  private portOnClose(link: Link, port: MessagePort): void {
    // A close of a port we already replaced (re-wiring) is not news.
    if (link.port !== port) return;
    link.port = null;
    if (link.state === 'up') link.state = 'down';
    this.rejectPending(link, link.state === 'gone');
  }

  private dropPort(link: Link, port: MessagePort): void {
    // Replies the peer sent before it went away may still sit in the port:
    // the worker's 'exit' (and so peerDown) and its last messages arrive
    // independently. Deliver them before the port is closed.
    for (let m; (m = receiveMessageOnPort(port));) this.portOnMessage(link, m.message as Wire);
    link.port = null;
    port.removeAllListeners('message');
    port.removeAllListeners('close');
    port.close();
  }

  /** Flush what was queued while the peer was away, skipping asks that already settled. */
  private flush(link: Link): void {
    const queued = link.queue;
    link.queue = [];
    for (const wire of queued) {
      if (wire[0] === ASK) {
        const pending = link.pending.get(wire[1]);
        if (!pending) continue;
        pending.sent = true;
      }
      link.port!.postMessage(wire);
    }
  }

  /**
   * Reject what the dead instance held. Asks still queued (never sent) wait
   * for the next instance unless `final`.
   */
  private rejectPending(link: Link, final: boolean): void {
    for (const [id, pending] of link.pending) {
      if (!pending.sent && !final) continue;
      this.settle(link, id);
      pending.reject(actorExited(link.peer, pending.action));
    }
    if (final) link.queue = [];
  }

  private settle(link: Link, id: number): void {
    link.pending.delete(id);
    if (--this.pendingCount === 0 && this.timer) this.timer.unref();
  }

  private armTimer(deadline: number): void {
    if (this.timer && deadline >= this.timerDeadline) {
      this.timer.ref();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(() => this.timerOnFire(), Math.max(0, deadline - performance.now()));
  }

  private timerOnFire(): void {
    this.timer = null;
    this.timerDeadline = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const link of this.links.values()) {
      for (const [id, pending] of link.pending) {
        if (pending.deadline <= now) {
          this.settle(link, id);
          // A queued (unsent) ask gives its queue slot back.
          if (!pending.sent) link.queue = link.queue.filter((w) => w[1] !== id);
          pending.reject(timeout(link.peer, pending.action, pending.timeoutMs));
        } else if (pending.deadline < next) {
          next = pending.deadline;
        }
      }
    }
    if (next !== Infinity) this.armTimer(next);
  }
}
