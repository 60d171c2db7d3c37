/**
 * The grant authorizer's policy hook (check 9, ERR_GRANT_POLICY): each
 * configured policy process is asked, in config order, with a message of
 * action `Authorize` whose tags describe the request. A policy answers with
 * its Output `{ allow: boolean, reason: string }`. The first that does not
 * allow decides; a policy that errors, times out or answers anything else
 * denies, and the reason says which and why (it goes to the audit log and
 * to the requester).
 *
 * Policies are owned by the node: messages come from the node's DID.
 */
import type { SandboxHost } from './host.js';
import type { Limits, ProcessSpec } from './types.js';

export interface PolicyConfig {
  name: string;
  module: string;
  limits?: Partial<Limits>;
}

export interface PolicyOptions {
  policies: PolicyConfig[];
  threads?: number;
  limits?: Partial<Limits>;
  stateDir?: string | null;
}

/** What the authorizer asks about (check 9 of actors/grants/checks.ts, which names it PolicyInput). */
export interface AuthorizeInput {
  subscriber: string;
  service: string;
  subscription: string;
  sourceIp: string;
  port: number;
  proto: string;
}

export interface Verdict {
  allow: boolean;
  reason: string;
}

/** A reason is the policy's to give, not to fill the audit log with. */
const MAX_REASON = 200;

export class PolicyGate {
  private seq = 0;

  private constructor(
    private readonly node: string,
    private readonly names: string[],
    private readonly host: SandboxHost | null,
  ) {}

  /** With no policies, no pool is started and every request is allowed. */
  static async start(node: string, opts: PolicyOptions): Promise<PolicyGate> {
    if (opts.policies.length === 0) return new PolicyGate(node, [], null);
    // Imported on demand: a node without policies never loads the engine or the pool.
    const { SandboxHost } = await import('./host.js');
    const processes: ProcessSpec[] = opts.policies.map((p) => ({
      name: p.name,
      module: p.module,
      owner: node,
      ...(p.limits ? { limits: p.limits } : {}),
    }));
    const host = new SandboxHost({
      processes,
      threads: opts.threads ?? 1,
      limits: opts.limits ?? {},
      stateDir: opts.stateDir ?? null,
    });
    return new PolicyGate(node, host.names, host);
  }

  get sandbox(): SandboxHost | null {
    return this.host;
  }

  async authorize(input: AuthorizeInput, now = Date.now()): Promise<Verdict> {
    if (!this.host) return { allow: true, reason: 'no policy configured' };
    const id = `authorize-${now}-${++this.seq}`;
    for (const name of this.names) {
      const verdict = await this.ask(name, id, input, now);
      if (!verdict.allow) return verdict;
    }
    return { allow: true, reason: `allowed by ${this.names.join(', ')}` };
  }

  async close(): Promise<void> {
    await this.host?.close();
  }

  private async ask(
    name: string,
    id: string,
    input: AuthorizeInput,
    now: number,
  ): Promise<Verdict> {
    const r = await this.host!.evaluate(name, {
      Id: id,
      From: this.node,
      Timestamp: now,
      Tags: [
        { name: 'Action', value: 'Authorize' },
        { name: 'Subscriber', value: input.subscriber },
        { name: 'Service', value: input.service },
        { name: 'Subscription', value: input.subscription },
        { name: 'Source-IP', value: input.sourceIp },
        { name: 'Port', value: String(input.port) },
        { name: 'Proto', value: input.proto },
      ],
    });
    if (r.Error !== undefined) {
      return { allow: false, reason: bounded(`${name} failed: ${r.Error} (${r.Code})`) };
    }
    const out = r.Output as { allow?: unknown; reason?: unknown } | null;
    const reason = typeof out?.reason === 'string' ? out.reason : '';
    if (out?.allow === true) return { allow: true, reason: bounded(`${name}: ${reason}`) };
    if (out?.allow === false) {
      return { allow: false, reason: bounded(`${name} denied: ${reason || 'no reason given'}`) };
    }
    return { allow: false, reason: `${name} gave no verdict ({allow, reason} expected)` };
  }
}

function bounded(s: string): string {
  return s.length > MAX_REASON ? `${s.slice(0, MAX_REASON)}…` : s;
}
