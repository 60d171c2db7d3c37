/**
 * The grant authorizer (docs/design.md, the grant flow): the shell that
 * serves its protocol (runtime/protocol/grants.ts) and wires the two sides
 * to the other actors. The provider side (provider.ts) decides requests and
 * keeps live grants in step with the firewall; the consumer side
 * (consumer.ts) activates our subscriptions and renews them. Both read the
 * journal's views through the read-only handle (lookup.ts); they write only
 * by asking the journal to append. Operator verbs (offer, subscribe,
 * approve, revoke) append the entries.
 */
import { randomUUID } from 'node:crypto';
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { AuditLog, verifyAuditLog } from '../../runtime/audit-log.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import { E } from '../../runtime/errors.js';
import { JournalReader } from '../../runtime/journal-reader.js';
import { grantsProtocol } from '../../runtime/protocol/grants.js';
import type { Handlers, Sender } from '../../runtime/protocol/define.js';
import type { GrantsStatus } from '../../runtime/protocol/grants.js';
import type { AppendResult, EntrySummary } from '../../runtime/protocol/journal.js';
import { PolicyGate } from '../../sandbox/policy.js';
import type { PolicyOptions } from '../../sandbox/policy.js';
import { Activations } from './activations.js';
import { disruption } from './disruption.js';
import { meshBlocks } from './checks.js';
import { Consumer } from './consumer.js';
import { ViewLookup } from './lookup.js';
import { NonceBook } from './nonces.js';
import { Provider } from './provider.js';
import { resolveId, resolveNode } from './resolve.js';
import { MembershipIndex } from '../../runtime/domain/membership.js';
import type { Membership } from '../../runtime/domain/membership.js';

/** Offers and revokes within this window share one reconcile with the executor. */
const RECONCILE_DEBOUNCE_MS = 500;

interface Options {
  stateDir: string;
  meshCidrs: string[];
  nonceTtlMs: number;
  subscriberPerMinute: number;
  subscriberBurst: number;
  globalPerSecond: number;
  globalBurst: number;
  auditLog: string;
  renewAt: number;
  sweepMs: number;
  reconcileMs: number;
  /** The operator's policy processes (check 9) and the sandbox they run in. */
  sandbox?: PolicyOptions;
}

export default class GrantsActor extends Actor {
  /** Filled and validated once by supervisor/config.ts ([grants], [mesh], [sandbox]): no second set of defaults here. */
  private readonly opts = this.options as unknown as Options;
  private readonly nonces = new NonceBook(this.opts.nonceTtlMs);
  private audit!: AuditLog;
  private policy!: PolicyGate;
  private views!: JournalReader;
  private lookup!: ViewLookup;
  private provider!: Provider;
  private consumer!: Consumer;
  private activations!: Activations;
  private me = '';
  private timers: NodeJS.Timeout[] = [];
  private reconcileTimer: NodeJS.Timeout | undefined;

  constructor(ctx: ActorContext) {
    super(ctx);
    this.serve(
      grantsProtocol,
      this.freshViews({
        status: () => this.adminOnStatus(),
        auditVerify: () => ({ path: this.opts.auditLog, ...verifyAuditLog(this.opts.auditLog) }),
        grants: () => ({
          live: [...this.provider.live.values()],
          activations: this.activations.all(),
        }),
        offer: ({ requestId, force, ...body }) => {
          // A port we already guard drops nothing new; a new one may lock people out.
          const guarded = this.lookup
            .offeredServices()
            .some((o) => o.proto === body.proto && o.port === body.port);
          const hurt = force || guarded ? null : disruption(body.proto, body.port);
          if (hurt) throw E.ERR_OFFER_DISRUPTS(hurt.reason);
          return this.append('offer', body, requestId);
        },
        subscribe: (req) => this.adminOnSubscribe(req.provider, req.service, req.requestId),
        approve: (req) =>
          this.adminOnApprove(resolveId(this.views, req.subscription), req.requestId),
        revoke: (req) => this.adminOnRevoke(resolveId(this.views, req.target), req.requestId),
        activate: (req) => this.consumer.activate(resolveId(this.views, req.subscription)),
        challenge: (req) => this.nonces.issue(req.peer),
        authorize: (req) => this.provider.authorize(req),
        appended: (req) => this.journalOnAppended(req.entries),
        membership: (data) => this.journalOnMembership(data),
      }),
    );
  }

  /**
   * Each message is handled on the journal as it stands when it arrives: a
   * notice of an append, or a peer's request about an entry just ingested,
   * must not read the thread's older snapshot (JournalReader.refresh).
   */
  private freshViews<H extends Handlers<typeof grantsProtocol>>(handlers: H): H {
    const out: Record<string, (req: unknown, from: Sender) => unknown> = {};
    for (const [action, handler] of Object.entries(handlers)) {
      const h = handler as (req: unknown, from: Sender) => unknown;
      out[action] = (req, from) => {
        this.views?.refresh();
        return h(req, from);
      };
    }
    return out as H;
  }

  override async init(): Promise<void> {
    this.audit = new AuditLog(this.opts.auditLog);
    this.activations = new Activations(`${this.opts.stateDir}/activations.json`);
    // The journal is up (it starts first): its identity, then its file, read-only.
    this.me = (await this.ask('journal', 'identity')).did;
    this.views = JournalReader.open(this.opts.stateDir);
    this.lookup = new ViewLookup(this.views, this.me);
    // Policies are the node's own processes: the node's DID owns them.
    this.policy = await PolicyGate.start(this.me, this.opts.sandbox ?? { policies: [] });
    this.provider = new Provider({
      me: this.me,
      views: this.views,
      lookup: this.lookup,
      ports: {
        applyNft: (req) => this.ask('nft', 'apply', req),
        reconcileNft: (req) => this.ask('nft', 'reconcile', req),
        append: (kind, body, requestId) => this.ask('journal', 'append', { kind, body, requestId }),
      },
      audit: this.audit,
      policy: this.policy,
      nonces: this.nonces,
      mesh: meshBlocks(this.opts.meshCidrs),
      rates: this.opts,
      log: this.log,
      metrics: this.metrics,
    });
    this.consumer = new Consumer({
      me: this.me,
      lookup: this.lookup,
      activations: this.activations,
      ports: {
        grantNonce: (provider, url) =>
          this.ask('gossip', 'grantNonce', url === undefined ? { provider } : { provider, url }),
        sign: (fields) => this.ask('journal', 'signGrantRequest', fields),
        grantRequest: (provider, rid, request, timeoutMs) =>
          this.ask('gossip', 'grantRequest', { provider, rid, request }, { timeoutMs }),
      },
      renewAt: this.opts.renewAt,
      log: this.log,
    });
    this.provider.load();
    await this.ask('journal', 'subscribe');
    this.lookup.membership = new MembershipIndex(await this.ask('journal', 'membership'));
    await this.provider.reconcile();
    const onTick = (f: () => Promise<void>) => () => {
      this.views.refresh();
      void f();
    };
    this.timers.push(
      setInterval(
        onTick(() => this.provider.sweep()),
        this.opts.sweepMs,
      ),
    );
    this.timers.push(
      setInterval(
        onTick(() => this.provider.reconcile()),
        this.opts.reconcileMs,
      ),
    );
    for (const t of this.timers) t.unref();
    this.consumer.start();
  }

  override async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.reconcileTimer);
    this.consumer?.stop();
    this.audit?.close();
    await this.policy?.close();
    await this.views?.close();
  }

  override inspectState(): unknown {
    return {
      live: this.provider?.live.size ?? 0,
      nonces: this.nonces.size,
      activations: this.activations?.all().length,
    };
  }

  private async journalOnAppended(entries: readonly EntrySummary[]): Promise<void> {
    // A new offer guards its port soon; a withdrawn one stops being guarded.
    if (await this.provider.journalOnAppended(entries)) this.reconcileSoon();
    // Our side: a provider's ungrant or revoke ends the activation it names.
    this.consumer.journalOnAppended(entries);
  }

  private async journalOnMembership(data: Membership): Promise<void> {
    this.lookup.membership = new MembershipIndex(data);
    if (await this.provider.membershipOnChange()) this.reconcileSoon();
  }

  /**
   * One reconcile for a burst of offers and revokes: each reconcile reads
   * every offer of ours, so one per entry would make a burst of N offers
   * cost N² reads.
   */
  private reconcileSoon(): void {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      void this.provider.reconcile();
    }, RECONCILE_DEBOUNCE_MS);
    this.reconcileTimer.unref();
  }

  // --- operator verbs --------------------------------------------------------

  /**
   * Subscribe to a provider's service: the provider by name, DID or DID
   * prefix; refused unless it offers the service now (a signed entry for a
   * service that does not exist would stay in the journal forever).
   */
  private adminOnSubscribe(
    providerText: string,
    service: string,
    requestId?: string,
  ): Promise<AppendResult> {
    const provider = resolveNode(this.views, this.lookup.membership, providerText);
    const offer = this.lookup.offerOf(provider, service);
    if (!offer) {
      const offered = this.lookup.servicesOf(provider);
      throw E.ERR_NO_SUCH_SERVICE(
        `${provider} offers no service ${JSON.stringify(service.slice(0, 64))}` +
          (offered.length > 0 ? ` (it offers: ${offered.join(', ')})` : ' (it offers none)'),
      );
    }
    return this.append('subscribe', { provider, service }, requestId);
  }

  private adminOnApprove(subscription: string, requestId?: string): Promise<AppendResult> {
    const sub = this.lookup.subscription(subscription);
    if (!sub || sub.provider !== this.me) {
      throw E.ERR_BAD_REQUEST('approve: no subscription to one of our services with that id');
    }
    return this.append('approve', { subscription }, requestId);
  }

  private adminOnRevoke(target: string, requestId?: string): Promise<AppendResult> {
    if (this.views.byId(target)?.author !== this.me) {
      throw E.ERR_BAD_REQUEST('revoke: target must be an entry of this node');
    }
    // A second revoke would be a second permanent signed entry saying nothing new.
    const earlier = this.views.view('revocations', `${target} ${this.me}`);
    if (earlier) {
      throw E.ERR_ALREADY_REVOKED(
        `revoke: ${target.slice(0, 12)} was revoked already (by entry ${earlier.id.slice(0, 12)})`,
      );
    }
    return this.append('revoke', { target }, requestId);
  }

  private append(
    kind: EntryKind,
    body: Record<string, unknown>,
    requestId: string | undefined,
  ): Promise<AppendResult> {
    return this.ask('journal', 'append', {
      kind,
      body,
      requestId: requestId ?? `${kind}-${randomUUID()}`,
    });
  }

  private adminOnStatus(): GrantsStatus {
    return {
      did: this.me,
      live: this.provider.live.size,
      nonces: this.nonces.size,
      activations: this.activations.all().length,
      audit: this.audit.last,
      meshCidrs: this.opts.meshCidrs,
      grantLatencyMs: this.provider.grantLatency.slice(),
      anySource: this.lookup.anySourceServices(),
    };
  }
}
