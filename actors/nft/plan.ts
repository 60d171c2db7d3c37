/**
 * The batch for a group of apply requests, planned against the mirror (the
 * kernel's structure) and the grants known to be in the kernel (the
 * desired state, which every commit keeps equal to what it committed).
 *
 * Requests are taken in arrival order; per address the last one wins (an
 * add then a remove of the same grant in one transaction is a remove).
 * Each request gets its own account of what it did. Whether an address is
 * "refreshed" or "added" is the executor's belief; the batch does not
 * depend on it being right: a refresh is remove-and-add (batch.ts), which
 * holds whether or not the kernel still has the element, and a plain add
 * of an element the kernel does have cannot fail.
 *
 * Structure (`add table`, `add chain`, `add set`, rules) goes into a batch
 * only where the mirror lacks it: every statement costs nft time, and a
 * table deleted behind our back fails the batch, which the executor then
 * retries against a fresh listing (one that shows the table missing).
 *
 * A group never both withdraws a service and offers or touches it in
 * another request: `conflicts` tells the executor to start a new
 * transaction there, so every batch has one meaning.
 */
import { elementsOf, emptyBatch } from './batch.js';
import type { Batch } from './batch.js';
import type { TableModel } from './model.js';
import { RULE_KINDS, ruleComment, serviceKey, setName } from './names.js';
import type { ApplyResult, Service } from '../../runtime/protocol/nft.js';
import type { ApplyIntent } from './validate.js';

/** A request's own account (types.ts ApplyResult without the transaction). */
export type RequestOutcome = Omit<ApplyResult, 'tx'>;

export interface Planned {
  batch: Batch;
  outcomes: RequestOutcome[];
  /** The offered services once the batch commits. */
  services: Map<string, Service>;
  /** set → address → expiresAt (or null: removed), the final word per address. */
  changes: Map<string, Map<string, number | null>>;
  /** Sets gone with their withdrawn services. */
  droppedSets: string[];
}

/** Services a request touches, and the ones it withdraws. */
export function touches(intent: ApplyIntent): { touched: Set<string>; withdrawn: Set<string> } {
  const touched = new Set<string>();
  for (const it of [...intent.add, ...intent.remove]) touched.add(it.svc);
  for (const s of intent.offer) touched.add(serviceKey(s.proto, s.port));
  const withdrawn = new Set(intent.withdraw.map((s) => serviceKey(s.proto, s.port)));
  return { touched, withdrawn };
}

/** Would `intent` mix a withdrawal with other use of one service in a group so far? */
export function conflicts(
  intent: ApplyIntent,
  group: { touched: Set<string>; withdrawn: Set<string> },
): boolean {
  const mine = touches(intent);
  for (const s of mine.withdrawn) if (group.touched.has(s) || group.withdrawn.has(s)) return true;
  for (const s of mine.touched) if (group.withdrawn.has(s)) return true;
  return false;
}

export function planApply(
  intents: readonly ApplyIntent[],
  mirror: TableModel,
  offered: ReadonlyMap<string, Service>,
  /** set → address → expiresAt: what the kernel holds, as far as the executor knows. */
  known: ReadonlyMap<string, ReadonlyMap<string, number>>,
  now: number,
): Planned {
  const state = (set: string, ip: string): 'live' | 'stale' | 'absent' => {
    const exp = known.get(set)?.get(ip);
    return exp === undefined ? 'absent' : exp > now ? 'live' : 'stale';
  };
  const b = emptyBatch();
  b.table = !mirror.exists;
  const services = new Map(offered);
  const changes = new Map<string, Map<string, number | null>>();
  const droppedSets: string[] = [];
  const outcomes: RequestOutcome[] = [];
  const families = new Map<string, 4 | 6>();

  const offer = (s: Service, out: RequestOutcome) => {
    const key = serviceKey(s.proto, s.port);
    if (services.has(key)) return;
    services.set(key, { proto: s.proto, port: s.port });
    out.offered.push({ proto: s.proto, port: s.port });
  };

  for (const intent of intents) {
    const out: RequestOutcome = {
      at: now,
      added: 0,
      refreshed: [],
      removed: 0,
      offered: [],
      withdrawn: [],
    };
    for (const s of intent.offer) offer(s, out);
    for (const it of intent.add) offer(it, out);
    for (const s of intent.withdraw) {
      const key = serviceKey(s.proto, s.port);
      const known = services.delete(key);
      const handles = mirror.handlesOf(s.proto, s.port) ?? [];
      b.deleteRules.push(...handles);
      for (const f of [4, 6] as const) {
        const name = setName(s.proto, s.port, f);
        if (mirror.sets.has(name)) b.deleteSets.push({ name, map: false });
        droppedSets.push(name);
        changes.delete(name);
      }
      if (known || handles.length > 0) out.withdrawn.push({ proto: s.proto, port: s.port });
    }
    for (const it of intent.remove) {
      change(changes, it.set, it.family, families).set(it.ip, null);
      out.removed++;
    }
    intent.add.forEach((it, i) => {
      const set = change(changes, it.set, it.family, families);
      const before = set.get(it.ip);
      const live = before !== undefined ? before !== null : state(it.set, it.ip) === 'live';
      set.set(it.ip, now + it.leaseMs);
      if (live) out.refreshed.push(i);
      else out.added++;
    });
    outcomes.push(out);
  }

  // Structure: the sets and rules the mirror lacks, for every touched or newly offered service.
  for (const [key, s] of services) {
    const touched =
      changes.has(setName(s.proto, s.port, 4)) || changes.has(setName(s.proto, s.port, 6));
    const fresh = !offered.has(key);
    if (!touched && !fresh) continue;
    for (const f of [4, 6] as const) {
      const name = setName(s.proto, s.port, f);
      if (!mirror.sets.has(name)) b.addSets.push({ name, family: f });
    }
    for (const kind of RULE_KINDS) {
      if (!mirror.rules.has(ruleComment(s.proto, s.port, kind))) {
        b.addRules.push({ proto: s.proto, port: s.port, kind });
      }
    }
  }

  for (const [set, m] of changes) {
    const ops = elementsOf(b, set, families.get(set)!);
    for (const [ip, exp] of m) {
      if (exp === null) ops.remove.push(ip);
      else if (state(set, ip) !== 'absent') ops.refresh.push([ip, exp - now]);
      else ops.add.push([ip, exp - now]);
    }
  }
  return { batch: b, outcomes, services, changes, droppedSets };
}

/** The changes to `set` (made on first use, its family noted for the batch). */
function change(
  changes: Map<string, Map<string, number | null>>,
  set: string,
  family: 4 | 6,
  families: Map<string, 4 | 6>,
): Map<string, number | null> {
  let m = changes.get(set);
  if (!m) {
    changes.set(set, (m = new Map()));
    families.set(set, family);
  }
  return m;
}
