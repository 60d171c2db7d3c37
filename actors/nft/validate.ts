/**
 * Every request is checked here, whole, before anything reaches a batch:
 * the first bad value refuses the request with its code and nothing of it
 * is applied. Checks are strict on purpose — exact field sets, real types
 * (a port is a number, never "22"), a dotted quad or IPv6 literal inside
 * the mesh CIDRs, integers in range — because what passes becomes nft
 * syntax. What comes out is already canonical (IPs) and carries the set
 * name it belongs to, so later stages never re-derive anything from input.
 *
 * These loops run once per grant (100,000 in a large reconcile), so a
 * refusal's message, naming the field (`apply.add[3].ip`), is built only
 * when there is a refusal, and names are built once per service.
 */
import {
  nftBadIp,
  nftBadLease,
  nftBadPort,
  nftBadProto,
  nftBadRequest,
  nftNotMesh,
  nftNotOffered,
} from '../../runtime/errors.js';
import { inCidrs, parseIp } from './addr.js';
import type { Cidr, Family } from './addr.js';
import { serviceKey, setName } from './names.js';
import { LIMITS } from '../../runtime/protocol/nft.js';
import type { Proto, Service } from '../../runtime/protocol/nft.js';

/** A validated (service, address) pair and where it lives. */
export interface Item extends Service {
  svc: string;
  set: string;
  family: Family;
  ip: string;
}

export interface AddItem extends Item {
  leaseMs: number;
}

export interface ApplyIntent {
  add: AddItem[];
  remove: Item[];
  offer: Service[];
  withdraw: Service[];
}

export interface ReconcileIntent {
  /** null: not given (keep what is offered, add what the grants name). */
  services: Map<string, Service> | null;
  /** set → ip → expiresAt (duplicates merged: the latest expiry wins). */
  grants: Map<string, Map<string, number>>;
  /** The services the grants name. */
  named: Map<string, Service>;
  count: number;
  expired: number;
}

const APPLY_FIELDS = ['add', 'remove', 'offer', 'withdraw'];
const RECONCILE_FIELDS = ['grants', 'services'];
const SERVICE_FIELDS = ['proto', 'port'];
const REF_FIELDS = ['proto', 'port', 'ip'];
const ADD_FIELDS = ['proto', 'port', 'ip', 'leaseSeconds'];
const LIVE_FIELDS = ['proto', 'port', 'ip', 'expiresAt'];

/** Where a value sits, for messages: `apply.add` and 3 → `apply.add[3]`. */
const at = (list: string, i: number): string => (i < 0 ? list : `${list}[${i}]`);

interface Names {
  svc: string;
  v4: string;
  v6: string;
}

export class Validator {
  /** Names per (proto, port), made on first use: index port * 2 + (udp ? 1 : 0). */
  private readonly names: Array<Names | undefined> = [];

  constructor(private readonly mesh: readonly Cidr[]) {}

  apply(data: unknown, what = 'apply'): ApplyIntent {
    const req = record(data, what, -1, APPLY_FIELDS, []);
    const lists = APPLY_FIELDS.map((f) => list(req[f], `${what}.${f}`));
    const total = lists.reduce((n, l) => n + l.length, 0);
    if (total === 0) throw nftBadRequest(`${what} has nothing to do`);
    if (total > LIMITS.applyItems) {
      throw nftBadRequest(`${what} has ${total} items, at most ${LIMITS.applyItems}`);
    }
    const [add, remove, offer, withdraw] = lists as [unknown[], unknown[], unknown[], unknown[]];
    const out: ApplyIntent = { add: [], remove: [], offer: [], withdraw: [] };
    const addPath = `${what}.add`;
    for (let i = 0; i < add.length; i++) {
      const r = record(add[i], addPath, i, ADD_FIELDS, ADD_FIELDS);
      const item = this.item(r, addPath, i);
      item.leaseMs = int(r.leaseSeconds, addPath, i, '.leaseSeconds', LIMITS.leaseSeconds) * 1000;
      out.add.push(item);
    }
    const removePath = `${what}.remove`;
    for (let i = 0; i < remove.length; i++) {
      out.remove.push(
        this.item(record(remove[i], removePath, i, REF_FIELDS, REF_FIELDS), removePath, i),
      );
    }
    offer.forEach((v, i) => out.offer.push(service(v, `${what}.offer`, i)));
    withdraw.forEach((v, i) => out.withdraw.push(service(v, `${what}.withdraw`, i)));

    const seen = new Map<string, Set<string>>();
    const check = (it: Item, where: string) => {
      let ips = seen.get(it.set);
      if (!ips) seen.set(it.set, (ips = new Set()));
      if (ips.has(it.ip)) throw nftBadRequest(`${where} names ${it.svc} ${it.ip} again`);
      ips.add(it.ip);
    };
    out.add.forEach((it, i) => check(it, `${what}: add[${i}]`));
    out.remove.forEach((it, i) => check(it, `${what}: remove[${i}]`));
    const withdrawn = new Set(out.withdraw.map((s) => serviceKey(s.proto, s.port)));
    for (const s of out.offer) {
      const key = serviceKey(s.proto, s.port);
      if (withdrawn.has(key)) throw nftBadRequest(`${what} both offers and withdraws ${key}`);
    }
    for (const it of out.add) {
      if (withdrawn.has(it.svc))
        throw nftBadRequest(`${what} adds into ${it.svc}, which it withdraws`);
    }
    return out;
  }

  reconcile(data: unknown, now: number): ReconcileIntent {
    const req = record(data, 'reconcile', -1, RECONCILE_FIELDS, ['grants']);
    const grants = list(req.grants, 'reconcile.grants');
    if (grants.length > LIMITS.reconcileGrants) {
      throw nftBadRequest(
        `reconcile has ${grants.length} grants, at most ${LIMITS.reconcileGrants}`,
      );
    }
    let services: Map<string, Service> | null = null;
    if (req.services !== undefined) {
      services = new Map();
      for (const [i, v] of list(req.services, 'reconcile.services').entries()) {
        const s = service(v, 'reconcile.services', i);
        services.set(serviceKey(s.proto, s.port), s);
      }
      if (services.size > LIMITS.services) {
        throw nftBadRequest(
          `reconcile offers ${services.size} services, at most ${LIMITS.services}`,
        );
      }
    }
    const out: ReconcileIntent = {
      services,
      grants: new Map(),
      named: new Map(),
      count: 0,
      expired: 0,
    };
    // An expiry this far ahead would be a lease longer than any apply may set.
    const latest = now + LIMITS.leaseSeconds * 1000;
    const path = 'reconcile.grants';
    for (let i = 0; i < grants.length; i++) {
      const r = record(grants[i], path, i, LIVE_FIELDS, LIVE_FIELDS);
      const item = this.item(r, path, i);
      const expiresAt = int(r.expiresAt, path, i, '.expiresAt', latest);
      if (services && !services.has(item.svc)) throw nftNotOffered(at(path, i), item.svc);
      if (expiresAt <= now) {
        out.expired++;
        continue;
      }
      if (!out.named.has(item.svc)) out.named.set(item.svc, { proto: item.proto, port: item.port });
      let set = out.grants.get(item.set);
      if (!set) out.grants.set(item.set, (set = new Map()));
      const before = set.get(item.ip);
      if (before === undefined) out.count++;
      if (before === undefined || expiresAt > before) set.set(item.ip, expiresAt);
    }
    return out;
  }

  /** The item, with leaseMs 0 until the caller sets it (one object shape for adds and removes). */
  private item(r: Record<string, unknown>, list: string, i: number): AddItem {
    const { proto, port } = service(r, list, i, true);
    const ip = r.ip;
    const addr = typeof ip === 'string' ? parseIp(ip) : null;
    if (!addr) throw nftBadIp(`${at(list, i)}.ip`, ip);
    if (!inCidrs(addr, this.mesh)) {
      throw nftNotMesh(
        `${at(list, i)}.ip`,
        addr.text,
        this.mesh.map((c) => c.text),
      );
    }
    const k = port * 2 + (proto === 'udp' ? 1 : 0);
    let names = this.names[k];
    if (!names) {
      names = {
        svc: serviceKey(proto, port),
        v4: setName(proto, port, 4),
        v6: setName(proto, port, 6),
      };
      this.names[k] = names;
    }
    return {
      proto,
      port,
      svc: names.svc,
      set: addr.family === 4 ? names.v4 : names.v6,
      family: addr.family,
      ip: addr.text,
      leaseMs: 0,
    };
  }
}

/** A service, from an object with exactly proto and port (or, `within` a grant, among its fields). */
function service(v: unknown, list: string, i: number, within = false): Service {
  const r = within
    ? (v as Record<string, unknown>)
    : record(v, list, i, SERVICE_FIELDS, SERVICE_FIELDS);
  const proto = r.proto;
  if (proto !== 'tcp' && proto !== 'udp') throw nftBadProto(`${at(list, i)}.proto`, proto);
  const port = r.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw nftBadPort(`${at(list, i)}.port`, port);
  }
  return { proto: proto as Proto, port };
}

/** A plain object with only `allowed` fields and every `required` one. */
function record(
  v: unknown,
  list: string,
  i: number,
  allowed: readonly string[],
  required: readonly string[],
): Record<string, unknown> {
  const proto = typeof v === 'object' && v !== null ? Object.getPrototypeOf(v) : undefined;
  if (Array.isArray(v) || (proto !== Object.prototype && proto !== null)) {
    throw nftBadRequest(`${at(list, i)} must be an object`);
  }
  const r = v as Record<string, unknown>;
  for (const k in r) {
    if (!Object.hasOwn(r, k) || allowed.includes(k)) continue;
    const name = JSON.stringify(k.length > 32 ? `${k.slice(0, 32)}…` : k).replace(
      /[^\x20-\x7e]/g,
      '?',
    );
    throw nftBadRequest(`${at(list, i)} has an unknown field ${name}`);
  }
  for (const k of required) {
    if (r[k] === undefined) throw nftBadRequest(`${at(list, i)}.${k} is required`);
  }
  return r;
}

function list(v: unknown, path: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw nftBadRequest(`${path} must be an array`);
  return v;
}

/** A positive safe integer up to `max`. */
function int(v: unknown, list: string, i: number, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw nftBadLease(`${at(list, i)}${field}`, v, `from 1 to ${max}`);
  }
  return v;
}
