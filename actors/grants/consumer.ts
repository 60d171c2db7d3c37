/**
 * The consumer side of the grant flow: `activate` runs the request against
 * a provider over the gossip link (a nonce, our signature, its answer) and
 * keeps the endpoint it returns, renewing it before the lease ends.
 */
import { E, errorFromPayload } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import type { Activation, GrantRequest, GrantResult } from '../../runtime/protocol/grants.js';
import type { Activations } from './activations.js';
import type { ViewLookup } from './lookup.js';

/** How long the provider may take to answer a grant request (its firewall commit included). */
const GRANT_REQUEST_TIMEOUT_MS = 15_000;

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
}

export class Consumer {
  private readonly renewals = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: ConsumerDeps) {}

  /** Renewals for the activations kept from before a restart. */
  start(): void {
    for (const a of this.d.activations.all()) this.scheduleRenewal(a);
  }

  stop(): void {
    for (const t of this.renewals.values()) clearTimeout(t);
  }

  async activate(subscription: string): Promise<Activation> {
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
    };
    this.d.activations.put(activation);
    this.scheduleRenewal(activation);
    return activation;
  }

  /** Renew when `renewAt` of the lease has passed: the new lease starts before the old one ends. */
  private scheduleRenewal(a: Activation): void {
    clearTimeout(this.renewals.get(a.subscription));
    const span = a.expires - a.at;
    const delay = Math.max(1000, a.at + span * this.d.renewAt - Date.now());
    if (a.expires <= Date.now()) return;
    const t = setTimeout(() => {
      this.renewals.delete(a.subscription);
      this.activate(a.subscription).catch((err: unknown) => {
        this.d.log.warn({ err, subscription: a.subscription }, 'renewal failed; retrying');
        this.scheduleRenewal({ ...a, at: Date.now() - span * this.d.renewAt + 5000 });
      });
    }, delay);
    t.unref();
    this.renewals.set(a.subscription, t);
  }
}
