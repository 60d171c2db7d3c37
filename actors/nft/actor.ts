/**
 * The nft executor (docs/design.md §6): the only code in meshnode that touches
 * nftables. It turns grants into set elements whose kernel timeout is the
 * lease, so enforcement ends on time even when the node is down.
 *
 * API (declared in runtime/protocol/nft.ts; every reply is plain data)
 * -------------------------------------------------------------
 *   action     from           data → reply
 *   apply      grants         ApplyRequest {add, remove, offer?, withdraw?} → ApplyResult
 *   reconcile  grants         ReconcileRequest {grants, services?} → ReconcileResult
 *              admin          (no data: re-check the kernel now) → ReconcileResult
 *   list       grants, admin  → ListResult: the table as the kernel has it now
 *   plan       grants, admin  ApplyRequest → PlanResult: the exact batch, checked by
 *                             `nft -c -f -`, not committed
 *   status     grants, admin  → StatusResult
 * Anyone else gets ERR_UNTRUSTED (the runtime's default deny).
 *
 *  - apply resolves once its transaction has committed, with what it did:
 *    how many adds were new, which were `refreshed` (already allowed: the
 *    timeout restarted), removes, services offered or withdrawn, `at` (add
 *    i's lease ends at `at + add[i].leaseSeconds * 1000`) and the
 *    transaction it went out in. ERR_ACTOR_EXITED (the executor died before
 *    answering) means "unknown": the change may be in the kernel; the next
 *    reconcile settles it either way.
 *    Requests arriving within `coalesceMs` (or while a transaction is in
 *    flight) share one transaction; each still gets its own answer. An add
 *    into a service that is not offered yet offers it in the same
 *    transaction; `withdraw` is the only way a service stops being offered.
 *  - reconcile (grants) is the complete desired state: send it when the
 *    grants actor starts and periodically. The executor keeps it, diffs it
 *    against the listed table — adds what is missing, removes what is
 *    extra, refreshes timeouts that are off, never flushes — and restores
 *    the table from it if someone deletes or flushes it (checked every
 *    `checkMs`, ~10 ms per check whatever the set sizes). Before the first
 *    reconcile it removes nothing.
 *  - IPs come back canonical (RFC 5952 for IPv6): key your grants by them.
 *  - Refusals (a request is validated whole; nothing of a refused one is
 *    applied): ERR_NFT_BAD_REQUEST, ERR_NFT_BAD_IP, ERR_NFT_NOT_MESH,
 *    ERR_NFT_BAD_PORT, ERR_NFT_BAD_PROTO, ERR_NFT_BAD_LEASE,
 *    ERR_NFT_NOT_OFFERED; failures: ERR_NFT_FAILED (nft refused the
 *    transaction: nothing applied), ERR_NFT_UNAVAILABLE (runtime/errors.ts).
 *
 * The table (default `inet meshnode`; the executor owns it and nothing else)
 * -------------------------------------------------------------------------
 *   table inet meshnode {
 *     set tcp_22_v4 { type ipv4_addr; flags timeout; }     # one pair per offered
 *     set tcp_22_v6 { type ipv6_addr; flags timeout; }     # (proto, port)
 *     chain input {
 *       type filter hook input priority filter; policy accept;
 *       ip saddr @tcp_22_v4 tcp dport 22 accept comment "tcp_22_v4"
 *       ip6 saddr @tcp_22_v6 tcp dport 22 accept comment "tcp_22_v6"
 *       tcp dport 22 drop comment "tcp_22_drop"
 *     }
 *   }
 * Ports that are not offered are not ours: their traffic passes this table
 * untouched. Other tables still see every packet (a drop anywhere wins).
 * How batches are built (an expired element never aborts one; a refresh is
 * delete-then-add) is in batch.ts; how nft is run (argv, never a shell; the
 * batch as a complete file on stdin, so a crash cannot commit half of it)
 * in nft-backend.ts; reconciliation in diff.ts.
 *
 * Backends (option `backend`): `nft`; `memory` (same API and behaviour,
 * state in memory, expiry honoured, NOTHING ENFORCED, said loudly at
 * start); `auto` (default): nft if it can manage the table here (root or
 * CAP_NET_ADMIN, checked with `nft -c`), else memory with that warning.
 * Options: options.ts (config: `[nft]` and `[mesh] cidrs`).
 */
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { E, MeshError } from '../../runtime/errors.js';
import { nftProtocol } from '../../runtime/protocol/nft.js';
import { ADMIN } from '../../runtime/types.js';
import { parseCidr } from './addr.js';
import { MemoryBackend } from './backend.js';
import type { Backend } from './backend.js';
import { Executor } from './executor.js';
import { NftBackend } from './nft-backend.js';
import { parseNftOptions } from './options.js';
import type { NftOptions } from './options.js';

export default class NftActor extends Actor {
  private executor: Executor | undefined;
  private backend: Backend | undefined;
  /** Why this backend runs (status and doctor say it): configured, or what auto found. */
  private why = '';

  constructor(ctx: ActorContext) {
    super(ctx);
    // Requests are checked whole by the executor's own validator (validate.ts), codes ERR_NFT_*.
    this.serve(nftProtocol, {
      apply: (req) => this.exec().apply(req),
      reconcile: (req, from) => this.exec().reconcile(req, from === ADMIN),
      list: () => this.exec().list(),
      plan: (req) => this.exec().plan(req),
      status: () => ({ ...this.exec().status(), why: this.why }),
    });
  }

  override async init(): Promise<void> {
    const o = parseNftOptions(this.options);
    this.backend = await this.openBackend(o);
    this.executor = new Executor(
      this.backend,
      {
        table: o.table,
        mesh: o.meshCidrs.map((c) => parseCidr(c)!),
        coalesceMs: o.coalesceMs,
        reconcileMs: o.reconcileMs,
        checkMs: o.checkMs,
      },
      this.log,
      this.metrics,
      this.name,
    );
    await this.executor.start();
    this.log.info(
      { backend: this.backend.kind, table: `inet ${o.table}`, mesh: o.meshCidrs },
      'nft executor ready',
    );
  }

  override async stop(): Promise<void> {
    await this.executor?.stop();
    await this.backend?.close();
  }

  override inspectState(): unknown {
    return this.executor?.inspect();
  }

  private exec(): Executor {
    if (!this.executor) throw E.ERR_STOPPING('nft executor is not started');
    return this.executor;
  }

  private async openBackend(o: NftOptions): Promise<Backend> {
    if (o.backend !== 'memory') {
      try {
        const nft = await NftBackend.open(o.nft, o.table, o.stateDir, o.adoptTable);
        this.why = `backend ${o.backend}: ${o.nft} manages table inet ${o.table}`;
        return nft;
      } catch (err) {
        if (o.backend === 'nft' || (err as MeshError).code !== 'ERR_NFT_UNAVAILABLE') throw err;
        this.warnUnenforced(`backend auto: ${(err as Error).message}`);
        return new MemoryBackend();
      }
    }
    this.warnUnenforced('backend memory was configured');
    return new MemoryBackend();
  }

  private warnUnenforced(why: string): void {
    this.why = why;
    this.log.warn(
      { backend: 'memory', why },
      'NOTHING IS ENFORCED: the nft executor keeps grants in memory only; no packet is filtered. ' +
        'Run as root (or with CAP_NET_ADMIN) with nft installed, or set [nft] backend = "nft".',
    );
  }
}
