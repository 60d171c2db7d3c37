/**
 * The grants actor's seat in the nft bench: an actor named `grants` (the
 * only sender the executor trusts for `apply`) that builds the requests on
 * its own thread and times its asks to `nft` there, as the real authorizer
 * would see them: from its ask to the executor's answer, one hop each way.
 *
 * Actions (from admin): offer, withdraw (and forget the kept grants), timeApply,
 * timeAsks, timeOne, timeReconcile.
 */
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { ADMIN } from '../../runtime/types.js';
import type { ApplyResult, GrantLease, ReconcileResult } from '../../runtime/protocol/nft.js';

const TIMEOUT = { timeoutMs: 120_000 };

/** 10.block.x.y for i (distinct blocks: every grant of a round is new). */
const grants = (block: number, port: number, n: number, leaseSeconds: number) =>
  Array.from({ length: n }, (_, i) => ({
    proto: 'tcp' as const,
    port,
    ip: `10.${block + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    leaseSeconds,
  }));

interface Job {
  port: number;
  block: number;
  n: number;
  lease: number;
}

export default class BenchGrants extends Actor {
  private live: GrantLease[] = [];

  constructor(ctx: ActorContext) {
    super(ctx);
    this.on('offer', [ADMIN], (d) =>
      this.ask('nft', 'apply', { offer: [{ proto: 'tcp', port: (d as Job).port }] }),
    );
    this.on('withdraw', [ADMIN], (d) => {
      this.live = [];
      const ports = (d as { ports: number[] }).ports;
      return this.ask(
        'nft',
        'apply',
        { withdraw: ports.map((port) => ({ proto: 'tcp' as const, port })) },
        TIMEOUT,
      );
    });
    this.on('timeApply', [ADMIN], (d) => this.timeApply(d as Job));
    this.on('timeAsks', [ADMIN], (d) => this.timeAsks(d as Job));
    this.on('timeOne', [ADMIN], (d) => this.timeOne(d as Job));
    this.on('timeReconcile', [ADMIN], () => this.timeReconcile());
  }

  /** One apply of n grants; the grants it added are kept as the desired state. */
  private async timeApply(j: Job): Promise<{ ms: number; added: number }> {
    const add = grants(j.block, j.port, j.n, j.lease);
    const t0 = performance.now();
    const r = (await this.ask('nft', 'apply', { add }, TIMEOUT)) as ApplyResult;
    const ms = performance.now() - t0;
    for (const g of add) {
      this.live.push({
        proto: g.proto,
        port: g.port,
        ip: g.ip,
        expiresAt: r.at + g.leaseSeconds * 1000,
      });
    }
    return { ms, added: r.added };
  }

  /** n applies of one grant each, all in flight at once. */
  private async timeAsks(j: Job): Promise<{ ms: number; transactions: number }> {
    const all = grants(j.block, j.port, j.n, j.lease);
    const t0 = performance.now();
    const rs = (await Promise.all(
      all.map((g) => this.ask('nft', 'apply', { add: [g] }, TIMEOUT)),
    )) as ApplyResult[];
    const ms = performance.now() - t0;
    return { ms, transactions: new Set(rs.map((r) => r.tx.id)).size };
  }

  /** n applies of one grant, one after the other: latency samples (ms). */
  private async timeOne(j: Job): Promise<number[]> {
    const out: number[] = [];
    for (const g of grants(j.block, j.port, j.n, j.lease)) {
      const t0 = performance.now();
      await this.ask('nft', 'apply', { add: [g] }, TIMEOUT);
      out.push(performance.now() - t0);
    }
    return out;
  }

  /** A reconcile with every grant this actor added through timeApply. */
  private async timeReconcile(): Promise<{ ms: number; result: ReconcileResult; grants: number }> {
    const t0 = performance.now();
    const result = (await this.ask(
      'nft',
      'reconcile',
      { grants: this.live },
      TIMEOUT,
    )) as ReconcileResult;
    return { ms: performance.now() - t0, result, grants: this.live.length };
  }
}
