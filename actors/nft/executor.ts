/**
 * The executor's engine, behind the actor shell: it keeps the desired state
 * and a mirror of the kernel, coalesces applies into transactions, and
 * reconciles.
 *
 * State, and who changes it:
 *  - desired (services + grants with expiry): replaced by a grants
 *    `reconcile` when it arrives; an apply's changes are merged in when its
 *    transaction commits. Arrival order is the truth order: an apply that
 *    arrived before a reconcile but commits after it still counts, which is
 *    right, because the grants actor sent the apply before it built the
 *    reconcile's list.
 *  - mirror (model.ts): the kernel's structure (table, sets, rules and
 *    their handles), replaced by each listing, advanced by each commit.
 *    Elements are not mirrored: the desired state is what the kernel holds
 *    as far as the executor knows (at start it is seeded from the listing,
 *    so grants from before a restart are known and refreshed, not re-added).
 *
 * Every kernel write runs on one lane, one at a time. Applies arriving
 * within `coalesceMs` of the first, or while a transaction is in flight,
 * go together into the next (a group commit, as the journal's). A failed
 * transaction is retried once against a fresh listing (the mirror may be
 * stale: a rule handle deleted behind our back), then request by request,
 * so one request cannot fail the others it was grouped with.
 *
 * A full reconcile lists the table off the lane (at 100,000 elements the
 * listing takes most of a second, and applies should not wait for it),
 * then diffs and commits on the lane; if an apply committed meanwhile, it
 * lists again on the lane so the diff never works from a stale picture.
 *
 * Once a reconcile has given the full desired state, two timers keep the
 * kernel honest: the cheap check every `checkMs` (batch.ts renderProbe; a
 * failure means the table, chain, a rule or a set is gone, and a full
 * reconcile restores it) and a full reconcile every `reconcileMs` (catches
 * elements deleted or changed behind our back). Before that first
 * reconcile nothing is removed: the executor does not know what is wanted.
 */
import type { Logger } from '../../runtime/log.js';
import type { MetricsRegistry } from '../../runtime/metrics.js';
import { nftBadRequest, toPayload } from '../../runtime/errors.js';
import type { Cidr } from './addr.js';
import type { Backend } from './backend.js';
import { elementCount, isEmpty, render, renderProbe } from './batch.js';
import { diff } from './diff.js';
import type { Desired } from './diff.js';
import type { Snapshot } from './listing.js';
import { TableModel } from './model.js';
import { CHAIN, parseOurName, serviceKey } from './names.js';
import { conflicts, planApply, touches } from './plan.js';
import type {
  ApplyResult,
  ListResult,
  PlanResult,
  ReconcileResult,
  Service,
  StatusResult,
  TxInfo,
} from '../../runtime/protocol/nft.js';
import { Validator } from './validate.js';
import type { ApplyIntent } from './validate.js';
import { SerialLane } from '../../runtime/serial-lane.js';

/** Elements per transaction at most: bounds one nft run (100,000 take about a second). */
const MAX_TX_ELEMENTS = 200_000;
/** Pending elements that make a transaction worth running at once, without the coalescing wait. */
const FLUSH_AT_ELEMENTS = 1000;

export interface ExecutorOptions {
  table: string;
  mesh: Cidr[];
  coalesceMs: number;
  reconcileMs: number;
  checkMs: number;
}

interface Pending {
  intent: ApplyIntent;
  size: number;
  resolve: (r: ApplyResult) => void;
  reject: (err: unknown) => void;
}

export class Executor {
  private readonly validator: Validator;
  private mirror = new TableModel(false);
  private desired: Desired = { services: new Map(), grants: new Map() };
  private desiredKnown = false;
  private pending: Pending[] = [];
  private pendingElements = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing = false;
  private readonly lane = new SerialLane();
  private txCount = 0;
  private failed = 0;
  private restores = 0;
  private lastReconcile: StatusResult['lastReconcile'] = null;
  private lastError: StatusResult['lastError'] = null;
  private checkTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private stopped = false;
  private readonly since = Date.now();
  private readonly m: ReturnType<typeof metricsOf>;

  constructor(
    private readonly backend: Backend,
    private readonly opts: ExecutorOptions,
    private readonly log: Logger,
    metrics: MetricsRegistry,
    private readonly name = 'nft',
  ) {
    this.validator = new Validator(opts.mesh);
    this.m = metricsOf(metrics);
    this.m.enforcing.set(backend.kind === 'nft' ? 1 : 0);
  }

  /** Read the table as it is (grants from before a restart stay enforced), start the timers. */
  async start(): Promise<void> {
    const snap = await this.backend.read();
    this.mirror = TableModel.fromSnapshot(snap, false);
    // Until the grants actor's first reconcile, "desired" is what the kernel holds: nothing is removed.
    for (const s of this.mirroredServices()) {
      this.desired.services.set(serviceKey(s.proto, s.port), s);
    }
    for (const name of this.mirror.sets.keys()) {
      const elements = snap?.sets.get(name)?.elements;
      if (elements && elements.size > 0) this.desired.grants.set(name, new Map(elements));
    }
    this.gauges();
    this.checkTimer = setInterval(() => void this.periodic('check'), this.opts.checkMs);
    this.reconcileTimer = setInterval(() => void this.periodic('reconcile'), this.opts.reconcileMs);
    this.checkTimer.unref();
    this.reconcileTimer.unref();
  }

  /** Stop the timers and let the last transaction finish. The kernel keeps every lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.checkTimer);
    clearInterval(this.reconcileTimer);
    if (this.timer) clearTimeout(this.timer);
    await this.lane.idle();
    if (this.pending.length > 0) await this.flush();
  }

  apply(data: unknown): Promise<ApplyResult> {
    const intent = this.validator.apply(data);
    return new Promise((resolve, reject) => {
      const size = intent.add.length + intent.remove.length;
      this.pending.push({ intent, size, resolve, reject });
      this.pendingElements += size;
      this.schedule(this.pendingElements >= FLUSH_AT_ELEMENTS ? 0 : this.opts.coalesceMs);
    });
  }

  /** From the grants actor: the full desired state. From the operator (no data): re-check now. */
  async reconcile(data: unknown, fromOperator: boolean): Promise<ReconcileResult> {
    const now = Date.now();
    let expired = 0;
    if (fromOperator) {
      if (data !== undefined && data !== null && Object.keys(data as object).length > 0) {
        throw nftBadRequest(
          'the operator reconcile takes no data: the grants actor owns the desired state',
        );
      }
    } else {
      const intent = this.validator.reconcile(data, now);
      const services =
        intent.services ??
        new Map([
          ...this.desired.services,
          ...this.mirroredServices().map((s) => [serviceKey(s.proto, s.port), s] as const),
          ...intent.named,
        ]);
      this.desired = { services, grants: intent.grants };
      this.desiredKnown = true;
      expired = intent.expired;
    }
    const result = await this.reconcileNow();
    result.expired = expired;
    return result;
  }

  async list(): Promise<ListResult> {
    const snap = await this.backend.read();
    const out: ListResult = {
      backend: this.backend.kind,
      table: this.opts.table,
      exists: snap !== null,
      services: [],
      grants: [],
      foreign: [],
    };
    if (!snap) return out;
    const services = new Map<string, Service>();
    for (const [name, set] of snap.sets) {
      const ours = parseOurName(name);
      if (!ours || ours.kind === 'drop') {
        out.foreign.push(`${set.map ? 'map' : 'set'} ${name}`);
        continue;
      }
      services.set(serviceKey(ours.proto, ours.port), { proto: ours.proto, port: ours.port });
      for (const [ip, exp] of set.elements) {
        out.grants.push({
          proto: ours.proto,
          port: ours.port,
          ip,
          expiresAt: exp === Infinity ? null : exp,
        });
      }
    }
    for (const name of snap.chains.keys()) if (name !== CHAIN) out.foreign.push(`chain ${name}`);
    for (const r of snap.rules) {
      if (!r.comment || !parseOurName(r.comment))
        out.foreign.push(`rule ${r.chain} handle ${r.handle}`);
    }
    out.foreign.push(...snap.other);
    out.services = [...services.values()];
    return out;
  }

  /**
   * The exact batch an apply would run now, checked (nft -c) and not
   * committed; with no data (`meshnode nft plan`), the batch a reconcile
   * would run: what differs between the kernel and the desired state.
   */
  plan(data: unknown): Promise<PlanResult> {
    if (
      data === undefined ||
      data === null ||
      (typeof data === 'object' && Object.keys(data).length === 0)
    ) {
      return this.planReconcile();
    }
    const intent = this.validator.apply(data, 'plan');
    return this.onLane(async () => {
      if (intent.withdraw.length > 0 && this.mirror.unknownHandles) await this.relist();
      const planned = planApply(
        [intent],
        this.mirror,
        this.desired.services,
        this.desired.grants,
        Date.now(),
      );
      const text = render(planned.batch, this.opts.table, this.backend.refreshByAdd);
      await this.backend.check(planned.batch, text);
      return { batch: text, checkedBy: this.backend.kind, elements: elementCount(planned.batch) };
    });
  }

  /** A reconcile's batch against a fresh listing, checked and not committed. */
  private planReconcile(): Promise<PlanResult> {
    return this.onLane(async () => {
      const { batch } = diff(this.desired, await this.backend.read(), Date.now());
      if (isEmpty(batch)) return { batch: '', checkedBy: this.backend.kind, elements: 0 };
      const text = render(batch, this.opts.table, this.backend.refreshByAdd);
      await this.backend.check(batch, text);
      return { batch: text, checkedBy: this.backend.kind, elements: elementCount(batch) };
    });
  }

  status(): StatusResult {
    let grants = 0;
    for (const m of this.desired.grants.values()) grants += m.size;
    return {
      actor: this.name,
      since: this.since,
      backend: this.backend.kind,
      enforcing: this.backend.kind === 'nft',
      table: this.opts.table,
      services: this.desired.services.size,
      grants,
      desiredKnown: this.desiredKnown,
      transactions: this.txCount,
      failedTransactions: this.failed,
      restores: this.restores,
      pending: this.pending.length,
      lastReconcile: this.lastReconcile,
      lastError: this.lastError,
    };
  }

  inspect(): unknown {
    return {
      ...this.status(),
      mirror: {
        exists: this.mirror.exists,
        sets: this.mirror.sets.size,
        rules: this.mirror.rules.size,
      },
    };
  }

  // --- applies ---------------------------------------------------------------

  private schedule(delayMs: number): void {
    if (this.flushing) return;
    if (this.timer && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    const go = () => {
      this.timer = null;
      void this.flush();
    };
    this.timer = setTimeout(go, delayMs);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) await this.onLane(() => this.flushGroup());
    } finally {
      this.flushing = false;
    }
  }

  /** Take the next group of pending requests and commit it. */
  private async flushGroup(): Promise<void> {
    const group: Pending[] = [];
    const seen = { touched: new Set<string>(), withdrawn: new Set<string>() };
    let elements = 0;
    while (this.pending.length > 0) {
      const next = this.pending[0]!;
      if (
        group.length > 0 &&
        (conflicts(next.intent, seen) || elements + next.size > MAX_TX_ELEMENTS)
      )
        break;
      group.push(this.pending.shift()!);
      this.pendingElements -= next.size;
      elements += next.size;
      const t = touches(next.intent);
      for (const s of t.touched) seen.touched.add(s);
      for (const s of t.withdrawn) seen.withdrawn.add(s);
    }
    try {
      if (seen.withdrawn.size > 0 && this.mirror.unknownHandles) await this.relist();
      await this.commitGroup(group);
      return;
    } catch (err) {
      this.noteError(err, 'transaction failed; retrying against a fresh listing');
    }
    try {
      await this.relist();
      await this.commitGroup(group);
      return;
    } catch (err) {
      if (group.length === 1) {
        this.noteError(err, 'transaction failed again');
        group[0]!.reject(err);
        return;
      }
    }
    for (const p of group) {
      try {
        await this.commitGroup([p]);
      } catch (err) {
        this.noteError(err, 'request failed on its own');
        p.reject(err);
      }
    }
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    const now = Date.now();
    const planned = planApply(
      group.map((p) => p.intent),
      this.mirror,
      this.desired.services,
      this.desired.grants,
      now,
    );
    const tx = await this.commit(planned.batch, group.length, now);
    this.desired.services = planned.services;
    for (const set of planned.droppedSets) this.desired.grants.delete(set);
    for (const [set, changes] of planned.changes) {
      let d = this.desired.grants.get(set);
      if (!d) this.desired.grants.set(set, (d = new Map()));
      for (const [ip, exp] of changes) {
        if (exp === null) d.delete(ip);
        else d.set(ip, exp);
      }
    }
    this.gauges();
    group.forEach((p, i) => p.resolve({ ...planned.outcomes[i]!, tx }));
  }

  // --- reconcile and checks ---------------------------------------------------

  private async reconcileNow(): Promise<ReconcileResult> {
    const started = performance.now();
    const txBefore = this.txCount;
    let snap: Snapshot | null = await this.backend.read();
    return this.onLane(async () => {
      // An apply committed while we listed: list again, now that nothing else can.
      if (this.txCount !== txBefore) snap = await this.backend.read();
      let result: ReconcileResult;
      try {
        result = await this.diffAndCommit(snap);
      } catch (err) {
        this.noteError(err, 'reconcile failed; retrying against a fresh listing');
        result = await this.diffAndCommit(await this.backend.read());
      }
      result.ms = Math.round(performance.now() - started);
      this.m.reconciles.inc();
      this.lastReconcile = { ...result, at: Date.now() };
      return result;
    });
  }

  private async diffAndCommit(snap: Snapshot | null): Promise<ReconcileResult> {
    const now = Date.now();
    this.forgetExpired(now);
    const { batch, stats } = diff(this.desired, snap, now);
    let tx: TxInfo | null = null;
    if (!isEmpty(batch)) tx = await this.commit(batch, 0, now);
    this.mirror = TableModel.fromSnapshot(snap, false);
    if (tx) this.mirror.advance(batch, now);
    this.gauges();
    return { ...stats, expired: 0, ms: 0, tx };
  }

  private async periodic(kind: 'check' | 'reconcile'): Promise<void> {
    if (!this.desiredKnown || this.checking || this.stopped) return;
    if (kind === 'check' && this.desired.services.size === 0 && !this.mirror.exists) return;
    this.checking = true;
    try {
      // Rules we added have no handle until a listing: then the check is a full reconcile.
      const intact =
        kind === 'check' &&
        this.mirror.exists &&
        !this.mirror.unknownHandles &&
        (await this.onLane(() => this.probe()));
      if (intact) return;
      const result = await this.reconcileNow();
      // Desired changes reach the kernel through applies and grants reconciles, so a
      // periodic pass that had to change something repaired damage done behind our back.
      if (result.tx) this.restored(kind, result);
    } catch (err) {
      this.noteError(err, `periodic ${kind} failed`);
    } finally {
      this.checking = false;
    }
  }

  private probe(): Promise<boolean> {
    const handles = [...this.mirror.rules.values()].filter((h): h is number => h !== null);
    const text = renderProbe(this.opts.table, handles, [...this.mirror.sets.keys()]);
    return this.backend.probe(text);
  }

  private restored(kind: string, result: ReconcileResult): void {
    this.restores++;
    this.m.restores.inc();
    const { tx: _tx, ...changes } = result;
    this.log.warn(
      { table: this.opts.table, found: kind, ...changes },
      'nft table was damaged: repaired',
    );
  }

  // --- helpers -----------------------------------------------------------------

  private async commit(
    batch: Parameters<typeof render>[0],
    requests: number,
    now: number,
  ): Promise<TxInfo> {
    const text = render(batch, this.opts.table, this.backend.refreshByAdd);
    const started = performance.now();
    try {
      await this.backend.commit(batch, text);
    } catch (err) {
      this.failed++;
      this.m.txFailed.inc();
      throw err;
    }
    const ms = performance.now() - started;
    const elements = elementCount(batch);
    this.txCount++;
    this.m.tx.inc();
    this.m.txMs.inc(ms);
    this.m.lastTxMs.set(ms);
    this.m.elements.inc(elements);
    // Applies advance the mirror here; a reconcile rebuilds it from its listing.
    if (requests > 0) this.mirror.advance(batch, now);
    this.log.debug(
      { tx: this.txCount, requests, elements, ms: Math.round(ms * 100) / 100 },
      'nft transaction committed',
    );
    if (this.log.enabled('trace')) this.log.trace({ tx: this.txCount, batch: text }, 'nft batch');
    return {
      id: this.txCount,
      requests,
      elements,
      ms: Math.round(ms * 100) / 100,
      committedAt: Date.now(),
    };
  }

  private async relist(): Promise<void> {
    this.mirror = TableModel.fromSnapshot(await this.backend.read(), false);
  }

  /** Services whose sets the kernel has (from the last listing). */
  private mirroredServices(): Service[] {
    const out = new Map<string, Service>();
    for (const name of this.mirror.sets.keys()) {
      const ours = parseOurName(name);
      if (ours) out.set(serviceKey(ours.proto, ours.port), { proto: ours.proto, port: ours.port });
    }
    return [...out.values()];
  }

  /** Desired grants past their expiry: the kernel has dropped them already. */
  private forgetExpired(now: number): void {
    for (const m of this.desired.grants.values()) {
      for (const [ip, exp] of m) if (exp <= now) m.delete(ip);
    }
  }

  private gauges(): void {
    let n = 0;
    for (const m of this.desired.grants.values()) n += m.size;
    this.m.grants.set(n);
    this.m.services.set(this.desired.services.size);
  }

  private noteError(err: unknown, what: string): void {
    const p = toPayload(err);
    this.lastError = { ...p, at: Date.now() };
    this.log.warn({ code: p.code, err: p.message }, what);
  }

  private onLane<T>(op: () => Promise<T>): Promise<T> {
    return this.lane.run(op);
  }
}

function metricsOf(metrics: MetricsRegistry) {
  return {
    tx: metrics.counter('nft_transactions_total'),
    txFailed: metrics.counter('nft_transaction_failures_total'),
    // Batch latency: total ms over transactions_total is the mean; last is the latest.
    txMs: metrics.counter('nft_transaction_ms_total'),
    lastTxMs: metrics.gauge('nft_last_transaction_ms'),
    elements: metrics.counter('nft_elements_total'),
    reconciles: metrics.counter('nft_reconciles_total'),
    restores: metrics.counter('nft_restores_total'),
    grants: metrics.gauge('nft_grants'),
    services: metrics.gauge('nft_services'),
    enforcing: metrics.gauge('nft_enforcing'),
  };
}
