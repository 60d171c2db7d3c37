/**
 * Our table as a model: the sets (address → expiry), rules (comment →
 * handle) and whether the table and its chain exist. It plays two parts:
 *
 *  - the executor's MIRROR of the kernel's structure (table, sets, rules),
 *    rebuilt from every listing and advanced by every committed batch
 *    (`advance`): it tells an apply which sets and rules already exist, and
 *    gives withdrawals and the cheap check the rule handles. Rules the
 *    executor added itself have no handle until the next listing. The
 *    mirror does not track elements (`trackElements` false): the desired
 *    state already holds every grant, and a second copy of 100,000 entries
 *    would double what the garbage collector walks.
 *  - the MEMORY backend's kernel (`commit`): the same model, made strict —
 *    a batch that nft would refuse (a rule handle or set that does not
 *    exist, a set still referenced) fails whole and changes nothing — with
 *    its own handles and the kernel's expiry (expired elements are gone).
 */
import { nftFailed } from '../../runtime/errors.js';
import type { Family } from './addr.js';
import type { Batch } from './batch.js';
import type { Snapshot } from './listing.js';
import { emptySnapshot } from './listing.js';
import { CHAIN, parseOurName, ruleComment } from './names.js';
import type { Proto } from '../../runtime/protocol/nft.js';

/** How long after its expiry the mirror forgets an element: the kernel's gc has run by then. */
const FORGET_AFTER_MS = 10_000;

export interface ModelSet {
  family: Family;
  elements: Map<string, number>;
}

export class TableModel {
  exists = false;
  readonly sets = new Map<string, ModelSet>();
  /** Our rules by comment, in chain order; null handle = added by us, not listed since. */
  readonly rules = new Map<string, number | null>();
  private nextHandle = 1;

  constructor(readonly trackElements = true) {}

  /** The mirror of a listing: our chain, our sets of the right type, our rules. */
  static fromSnapshot(snap: Snapshot | null, trackElements = true): TableModel {
    const m = new TableModel(trackElements);
    if (!snap) return m;
    m.exists = snap.chains.has(CHAIN);
    for (const [name, s] of snap.sets) {
      const ours = parseOurName(name);
      if (!ours || ours.kind === 'drop' || s.map) continue;
      const family: Family = ours.kind === 'v4' ? 4 : 6;
      if (s.type !== (family === 4 ? 'ipv4_addr' : 'ipv6_addr')) continue;
      m.sets.set(name, { family, elements: trackElements ? new Map(s.elements) : new Map() });
    }
    for (const r of snap.rules) {
      if (r.chain === CHAIN && r.comment && parseOurName(r.comment) && !m.rules.has(r.comment)) {
        m.rules.set(r.comment, r.handle);
      }
    }
    return m;
  }

  /** Is ip in set: live, present but past its expiry, or absent. */
  state(set: string, ip: string, now: number): 'live' | 'stale' | 'absent' {
    const exp = this.sets.get(set)?.elements.get(ip);
    if (exp === undefined) return 'absent';
    return exp > now ? 'live' : 'stale';
  }

  /** Rule handles of a service's rules; null if one is not known. */
  handlesOf(proto: Proto, port: number): number[] | null {
    const out: number[] = [];
    for (const kind of ['v4', 'v6', 'drop'] as const) {
      const h = this.rules.get(ruleComment(proto, port, kind));
      if (h === null) return null;
      if (h !== undefined) out.push(h);
    }
    return out;
  }

  get unknownHandles(): boolean {
    for (const h of this.rules.values()) if (h === null) return true;
    return false;
  }

  get elementCount(): number {
    let n = 0;
    for (const s of this.sets.values()) n += s.elements.size;
    return n;
  }

  /**
   * Mirror: what a committed batch did (lenient: the kernel already accepted
   * it). Long-expired elements are not swept here (that walks every element,
   * per transaction); the next listing replaces the mirror anyway.
   */
  advance(b: Batch, now: number): void {
    this.applyBatch(b, now, false);
  }

  /** Memory backend: apply `b` as the kernel would, all or nothing. */
  commit(b: Batch, now: number): void {
    const next = this.clone();
    next.applyBatch(b, now, true);
    this.exists = next.exists;
    this.sets.clear();
    for (const [k, v] of next.sets) this.sets.set(k, v);
    this.rules.clear();
    for (const [k, v] of next.rules) this.rules.set(k, v);
    this.nextHandle = next.nextHandle;
  }

  /** Memory backend: the table as a listing would show it (null: no table). */
  snapshot(now: number): Snapshot | null {
    if (!this.exists) return null;
    this.forget(now);
    const snap = emptySnapshot();
    snap.chains.set(CHAIN, { type: 'filter', hook: 'input', prio: 0, policy: 'accept' });
    // Chain order: accepts are inserted at the top, drops appended at the bottom.
    const rules = [...this.rules].map(([comment, handle]) => ({
      chain: CHAIN,
      handle: handle!,
      comment,
    }));
    const isDrop = (r: { comment: string }) => r.comment.endsWith('_drop');
    snap.rules.push(...rules.filter((r) => !isDrop(r)).reverse(), ...rules.filter(isDrop));
    for (const [name, s] of this.sets) {
      const live = new Map<string, number>();
      for (const [ip, exp] of s.elements) if (exp > now) live.set(ip, exp);
      snap.sets.set(name, {
        map: false,
        type: s.family === 4 ? 'ipv4_addr' : 'ipv6_addr',
        flags: ['timeout'],
        elements: live,
        odd: 0,
      });
    }
    return snap;
  }

  clone(): TableModel {
    const m = new TableModel(this.trackElements);
    m.exists = this.exists;
    for (const [k, s] of this.sets)
      m.sets.set(k, { family: s.family, elements: new Map(s.elements) });
    for (const [k, v] of this.rules) m.rules.set(k, v);
    m.nextHandle = this.nextHandle;
    return m;
  }

  /** Drop elements long expired (the kernel's gc removed them). */
  forget(now: number): void {
    for (const s of this.sets.values()) {
      for (const [ip, exp] of s.elements) if (exp + FORGET_AFTER_MS <= now) s.elements.delete(ip);
    }
  }

  private applyBatch(b: Batch, now: number, strict: boolean): void {
    const fail = (why: string) => {
      if (strict) throw nftFailed('commit', why);
    };
    for (const h of b.deleteRules) {
      const comment = [...this.rules].find(([, v]) => v === h)?.[0];
      if (comment === undefined) fail(`no rule with handle ${h}: No such file or directory`);
      else this.rules.delete(comment);
    }
    for (const c of b.deleteChains) {
      if (c !== CHAIN || !this.exists) fail(`no chain ${c}: No such file or directory`);
      else {
        this.rules.clear();
        this.exists = false;
      }
    }
    for (const s of b.deleteSets) {
      if (!this.sets.has(s.name)) fail(`no set ${s.name}: No such file or directory`);
      else if (this.rules.has(s.name)) fail(`set ${s.name} is in use: Device or resource busy`);
      this.sets.delete(s.name);
    }
    if (b.table) this.exists = true;
    if (!this.exists && (b.addSets.length > 0 || b.addRules.length > 0 || b.elements.size > 0)) {
      fail('no table: No such file or directory');
    }
    for (const s of b.addSets) {
      const had = this.sets.get(s.name);
      if (had && had.family !== s.family)
        fail(`set ${s.name} exists with another type: File exists`);
      if (!had) this.sets.set(s.name, { family: s.family, elements: new Map() });
    }
    for (const r of b.addRules) {
      const comment = ruleComment(r.proto, r.port, r.kind);
      if (r.kind !== 'drop' && !this.sets.has(comment)) {
        fail(`rule ${comment} names a set that does not exist: No such file or directory`);
      }
      if (strict && this.rules.has(comment)) fail(`rule ${comment} added twice`);
      this.rules.set(comment, strict ? this.nextHandle++ : null);
    }
    for (const [name, e] of b.elements) {
      let set = this.sets.get(name);
      if (!set) {
        fail(`no set ${name}: No such file or directory`);
        this.sets.set(name, (set = { family: e.family, elements: new Map() }));
      }
      if (!this.trackElements) continue;
      for (const ip of e.remove) set.elements.delete(ip);
      for (const [ip, ms] of e.refresh) set.elements.set(ip, now + ms);
      for (const [ip, ms] of e.add) set.elements.set(ip, now + ms);
    }
  }
}
