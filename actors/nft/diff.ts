/**
 * Reconciliation: the batch that turns what the table holds (a Snapshot)
 * into what is desired, touching only what differs. Never flush-and-
 * rebuild: an element that is right stays untouched in the kernel (its
 * counters, its running timeout); only missing ones are added, extra ones
 * removed, and ones whose expiry is off by more than RECONCILE_SLACK_MS
 * refreshed.
 *
 * Structure is checked the same way: our chain (filter, hook input,
 * priority 0, policy accept), per desired service its two sets (right type,
 * `flags timeout`) and three rules (by comment, drop after both accepts).
 * A set of the wrong type is the one thing repaired by replacement: its
 * service's rules and both its sets are deleted and re-created, with their
 * elements, in the same transaction, so there is no moment without the
 * drop rule. Anything else in the table — foreign chains, rules, sets — is
 * removed: the executor owns the table.
 */
import type { Family } from './addr.js';
import { elementsOf, emptyBatch } from './batch.js';
import type { Batch } from './batch.js';
import type { SetInfo, Snapshot } from './listing.js';
import { CHAIN, RULE_KINDS, parseOurName, ruleComment, serviceKey, setName } from './names.js';
import type { RuleKind } from './names.js';
import type { Service } from '../../runtime/protocol/nft.js';

/** Expiry differences below this are noise: listings round to whole seconds, and time passes. */
export const RECONCILE_SLACK_MS = 2000;

export interface Desired {
  services: Map<string, Service>;
  /** set name → address → expiresAt */
  grants: Map<string, Map<string, number>>;
}

export interface DiffStats {
  added: number;
  removed: number;
  refreshed: number;
  unchanged: number;
  rulesAdded: number;
  rulesRemoved: number;
  setsAdded: number;
  setsRemoved: number;
  tableCreated: boolean;
}

const FAMILIES: readonly Family[] = [4, 6];

export function diff(
  desired: Desired,
  snap: Snapshot | null,
  now: number,
): { batch: Batch; stats: DiffStats } {
  const b = emptyBatch();
  const stats: DiffStats = {
    added: 0,
    removed: 0,
    refreshed: 0,
    unchanged: 0,
    rulesAdded: 0,
    rulesRemoved: 0,
    setsAdded: 0,
    setsRemoved: 0,
    tableCreated: false,
  };
  if (!snap && desired.services.size === 0) return { batch: b, stats };

  const chain = snap?.chains.get(CHAIN);
  const chainOk =
    !!chain &&
    chain.type === 'filter' &&
    chain.hook === 'input' &&
    chain.prio === 0 &&
    chain.policy === 'accept';
  if (!snap) stats.tableCreated = true;
  if (!chainOk) b.table = true;
  for (const name of snap?.chains.keys() ?? []) {
    if (name !== CHAIN || !chainOk) b.deleteChains.push(name);
  }

  // Sets: keep the right ones, replace wrong ones (with their service), delete the rest.
  const wanted = new Map<string, { svc: Service; family: Family }>();
  for (const svc of desired.services.values()) {
    for (const f of FAMILIES) wanted.set(setName(svc.proto, svc.port, f), { svc, family: f });
  }
  const repaired = new Set<string>();
  for (const [name, info] of snap?.sets ?? []) {
    const want = wanted.get(name);
    if (!want) {
      b.deleteSets.push({ name, map: info.map });
      stats.setsRemoved++;
    } else if (!setOk(info, want.family)) {
      repaired.add(serviceKey(want.svc.proto, want.svc.port));
    }
  }
  for (const [name, info] of snap?.sets ?? []) {
    const want = wanted.get(name);
    if (want && repaired.has(serviceKey(want.svc.proto, want.svc.port))) {
      b.deleteSets.push({ name, map: info.map });
      stats.setsRemoved++;
    }
  }

  // Rules: ours, once each, for a desired service not under repair, drop after accepts.
  const kept = new Map<string, number>();
  const position = new Map<string, number>();
  if (chainOk) {
    snap!.rules.forEach((r, i) => {
      if (r.chain !== CHAIN) return;
      const ours = r.comment ? parseOurName(r.comment) : null;
      const svc = ours ? serviceKey(ours.proto, ours.port) : '';
      if (!ours || !desired.services.has(svc) || repaired.has(svc) || kept.has(r.comment!)) {
        b.deleteRules.push(r.handle);
        stats.rulesRemoved++;
        return;
      }
      kept.set(r.comment!, r.handle);
      position.set(r.comment!, i);
    });
    for (const svc of desired.services.values()) {
      const drop = ruleComment(svc.proto, svc.port, 'drop');
      const at = position.get(drop);
      const accepts = (['v4', 'v6'] as const).map((k) =>
        position.get(ruleComment(svc.proto, svc.port, k)),
      );
      if (at !== undefined && accepts.some((a) => a !== undefined && a > at)) {
        b.deleteRules.push(kept.get(drop)!);
        kept.delete(drop);
        stats.rulesRemoved++;
      }
    }
  }

  for (const svc of desired.services.values()) {
    const key = serviceKey(svc.proto, svc.port);
    for (const f of FAMILIES) {
      const name = setName(svc.proto, svc.port, f);
      const info = snap?.sets.get(name);
      const fresh = !info || repaired.has(key);
      if (fresh) {
        b.addSets.push({ name, family: f });
        stats.setsAdded++;
      }
      diffElements(b, stats, name, f, fresh ? undefined : info, desired.grants.get(name), now);
    }
    for (const kind of RULE_KINDS as readonly RuleKind[]) {
      if (kept.has(ruleComment(svc.proto, svc.port, kind))) continue;
      b.addRules.push({ proto: svc.proto, port: svc.port, kind });
      stats.rulesAdded++;
    }
  }
  // Adding sets or rules needs the table; `add table` is idempotent.
  if (b.addSets.length > 0 || b.addRules.length > 0) b.table = true;
  return { batch: b, stats };
}

function setOk(info: SetInfo, family: Family): boolean {
  return (
    !info.map &&
    info.type === (family === 4 ? 'ipv4_addr' : 'ipv6_addr') &&
    info.flags.length === 1 &&
    info.flags[0] === 'timeout' &&
    info.odd === 0
  );
}

function diffElements(
  b: Batch,
  stats: DiffStats,
  set: string,
  family: Family,
  have: SetInfo | undefined,
  want: Map<string, number> | undefined,
  now: number,
): void {
  const kernel = have?.elements ?? new Map<string, number>();
  const ops = () => elementsOf(b, set, family);
  for (const ip of kernel.keys()) {
    if (want?.has(ip)) continue;
    ops().remove.push(ip);
    stats.removed++;
  }
  for (const [ip, exp] of want ?? []) {
    const left = exp - now;
    if (left < 1) continue;
    const k = kernel.get(ip);
    if (k === undefined) {
      ops().add.push([ip, left]);
      stats.added++;
    } else if (Math.abs(k - exp) > RECONCILE_SLACK_MS) {
      ops().refresh.push([ip, left]);
      stats.refreshed++;
    } else {
      stats.unchanged++;
    }
  }
}
