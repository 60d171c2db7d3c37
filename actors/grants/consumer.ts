/**
 * The consumer side of the grant flow: `activate` runs the request against
 * a provider over the gossip link (a nonce, our signature, its answer) and
 * keeps the endpoint it returns, renewing it before the lease ends.
 *
 * An activation ends — state `revoked`, one log line, no more renewals —
 * when the provider refuses for good (PERMANENT_REFUSALS) or when its
 * `ungrant`, its revoke of our grant or our own revoke of the subscription
 * reaches our journal, whichever comes first. Other failures are retried,
 * backing off from RETRY_FIRST_MS to RETRY_CAP_MS.
 */
import { E, errorFromPayload } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { PERMANENT_REFUSALS } from '../../runtime/protocol/grants.js';
import type { Activation, GrantRequest, GrantResult } from '../../runtime/protocol/grants.js';
import type { EntrySummary } from '../../runtime/protocol/journal.js';
import type { Activations } from './activations.js';
import type { ViewLookup } from './lookup.js';

/** How long the provider may take to answer a grant request (its firewall commit included). */
const GRANT_REQUEST_TIMEOUT_MS = 15_000;
/** The first retry after a transient failure: soon, the lease is still running. */
const RETRY_FIRST_MS = 5_000;
/** Retries back off to this: a provider that is down is asked once a minute. */
const RETRY_CAP_MS = 60_000;
/** Entry kinds that can end one of our activations when they arrive. */
const ENDING_KINDS: ReadonlySet<string> = new Set(['ungrant', 'revoke']);

/** What the consumer needs from the other actors (typed asks, made by the actor shell). */
export interface ConsumerPorts {
  grantNonce(provider: string, url: string | undefined): Promise<{ rid: string; nonce: string }>;
  sign(fields: { nonce: string; service: string; subscription: string }): Promise<{
    did: string;
    sig: string;
  }>;
  grantRequest(
    provider: string,
    rid: string,
    request: GrantRequest,
    timeoutMs: number,
  ): Promise<GrantResult>;
}

export interface ConsumerDeps {
  me: string;
  lookup: ViewLookup;
  activations: Activations;
  ports: ConsumerPorts;
  /** Renew when this share of the lease has passed. */
  renewAt: number;
  log: Logger;
  /** Backoff after transient failures (tests shorten it); defaults RETRY_FIRST_MS, RETRY_CAP_MS. */
  retry?: { firstMs: number; capMs: number };
}

export class Consumer {
  private readonly renewals = new Map<string, NodeJS.Timeout>();
  /** Transient failures in a row, per subscription: the backoff's exponent. */
  private readonly failures = new Map<string, number>();

  constructor(private readonly d: ConsumerDeps) {}

  /** Renewals for the activations kept from before a restart. */
  start(): void {
    for (const a of this.d.activations.all()) {
      if (a.state !== 'revoked') this.scheduleRenewal(a);
    }
  }

  stop(): void {
    for (const t of this.renewals.values()) clearTimeout(t);
  }

  /** The operator's activate (a fresh try even after an end), or a renewal. */
  async activate(subscription: string): Promise<Activation> {
    try {
      return await this.request(subscription);
    } catch (err) {
      const kept = this.kept(subscription);
      const code = (err as { code?: string }).code ?? 'ERR_GRANT_REFUSED';
      if (kept && kept.state !== 'revoked' && PERMANENT_REFUSALS.has(code)) this.end(kept, code);
      throw err;
    }
  }

  /** New journal entries: an ungrant or a revoke that ends one of ours ends it now. */
  journalOnAppended(entries: readonly EntrySummary[]): void {
    if (!entries.some((e) => ENDING_KINDS.has(e.kind))) return;
    for (const a of this.d.activations.all()) {
      if (a.state === 'revoked') continue;
      const code = this.endedBy(a);
      if (code) this.end(a, code);
    }
  }

  /** Whether the journal now holds an act that ends `a`, and its code. */
  private endedBy(a: Activation): string | undefined {
    const { lookup } = this.d;
    const ungrant = lookup.ungrant(a.grant, a.provider);
    if (ungrant === 'withdrawn') return 'ERR_GRANT_OFFER';
    if (ungrant === 'revoked') return 'ERR_GRANT_REVOKED';
    if (lookup.revoked(a.grant, a.provider) || lookup.revoked(a.subscription, this.d.me)) {
      return 'ERR_GRANT_REVOKED';
    }
    return undefined;
  }

  private kept(subscription: string): Activation | undefined {
    return this.d.activations.all().find((a) => a.subscription === subscription);
  }

  /** A permanent end: kept for `grants` to show, never renewed again. */
  private end(a: Activation, code: string): void {
    clearTimeout(this.renewals.get(a.subscription));
    this.renewals.delete(a.subscription);
    this.failures.delete(a.subscription);
    this.d.activations.put({ ...a, state: 'revoked', error: { code, at: Date.now() } });
    this.d.log.info(
      { subscription: a.subscription, provider: a.provider, service: a.service, code },
      'activation ended by the provider; not renewing',
    );
  }

  private async request(subscription: string, again = false): Promise<Activation> {
    try {
      return await this.exchange(subscription);
    } catch (err) {
      // The link was replaced by a second one to the provider (it and we
      // dialed each other at once): once more, over the link that stays.
      if (!again && (err as { code?: string }).code === 'ERR_PEER_DUPLICATE') {
        return this.request(subscription, true);
      }
      throw err;
    }
  }

  private async exchange(subscription: string): Promise<Activation> {
    const sub = this.d.lookup.subscription(subscription);
    if (!sub || sub.subscriber !== this.d.me) {
      throw E.ERR_BAD_REQUEST('activate: no subscription of ours with that id');
    }
    const url = this.d.lookup.node(sub.provider)?.gossip;
    const { rid, nonce } = await this.d.ports.grantNonce(sub.provider, url);
    const { did, sig } = await this.d.ports.sign({ nonce, service: sub.service, subscription });
    const res = await this.d.ports.grantRequest(
      sub.provider,
      rid,
      { did, service: sub.service, subscription, nonce, sig },
      GRANT_REQUEST_TIMEOUT_MS,
    );
    if (!res.ok) {
      // The code is the provider's word: one outside our catalogue becomes ERR_GRANT_REFUSED.
      throw errorFromPayload(
        { code: res.code ?? 'ERR_GRANT_REFUSED', message: `provider refused: ${res.reason ?? ''}` },
        'ERR_GRANT_REFUSED',
      );
    }
    const activation: Activation = {
      subscription,
      provider: sub.provider,
      service: sub.service,
      endpoint: res.endpoint!,
      expires: res.expires!,
      grant: res.grant!,
      at: Date.now(),
      state: 'active',
    };
    this.failures.delete(subscription);
    this.d.activations.put(activation);
    this.scheduleRenewal(activation);
    return activation;
  }

  /** Renew when `renewAt` of the lease has passed: the new lease starts before the old one ends. */
  private scheduleRenewal(a: Activation): void {
    const span = a.expires - a.at;
    this.renewIn(a, Math.max(1000, a.at + span * this.d.renewAt - Date.now()));
  }

  private renewIn(a: Activation, delayMs: number): void {
    clearTimeout(this.renewals.get(a.subscription));
    const t = setTimeout(() => {
      this.renewals.delete(a.subscription);
      this.activate(a.subscription).catch((err: unknown) => this.renewalOnFailure(a, err));
    }, delayMs);
    t.unref();
    this.renewals.set(a.subscription, t);
  }

  private renewalOnFailure(a: Activation, err: unknown): void {
    const code = (err as { code?: string }).code ?? 'ERR_GRANT_REFUSED';
    // activate() has already ended it when the refusal is permanent.
    if (PERMANENT_REFUSALS.has(code) || this.kept(a.subscription)?.state === 'revoked') return;
    const n = (this.failures.get(a.subscription) ?? 0) + 1;
    this.failures.set(a.subscription, n);
    const { firstMs, capMs } = this.d.retry ?? { firstMs: RETRY_FIRST_MS, capMs: RETRY_CAP_MS };
    const delay = Math.min(capMs, firstMs * 2 ** (n - 1));
    const kept = this.kept(a.subscription) ?? a;
    this.d.activations.put({ ...kept, state: 'retrying', error: { code, at: Date.now() } });
    // One warning when it starts failing; the retries after it at debug.
    const log = n === 1 ? this.d.log.warn.bind(this.d.log) : this.d.log.debug.bind(this.d.log);
    log(
      { subscription: a.subscription, provider: a.provider, code, retryInMs: delay, attempt: n },
      'renewal failed; retrying',
    );
    this.renewIn(kept, delay);
  }
}
