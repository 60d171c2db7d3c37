/**
 * Journal fixtures: deterministic keys, signed entries chained into feeds,
 * a valid body for every kind, and a supervisor running the real node
 * (journal and the other built-ins) on a temp state directory.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { keyPairFromSeed, loadFastHash, sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import { encodeEntry, entryId, sigToString, signingBytes } from '../../runtime/domain/codec.js';
import type { Entry, UnsignedEntry } from '../../runtime/domain/codec.js';
import { checkEntry } from '../../actors/journal/validate.js';
import type { CheckedEntry } from '../../actors/journal/validate.js';
import { parseConfig } from '../../supervisor/config.js';
import { supervisorInput } from '../../supervisor/config-specs.js';
import { Supervisor } from '../../supervisor/supervisor.js';
import { memoryLogger } from './supervisor.js';
import type { JournalStatus } from '../../runtime/protocol/journal.js';

/** A fixed timestamp: entries built by the helpers are reproducible. */
// Fixtures hash thousands of entries: the journal writer's WebAssembly hasher, not the fallback.
await loadFastHash();

export const T0 = 1_700_000_000_000;

/** A deterministic key: the seed is 32 bytes of `n`. */
export function keyOf(n: number): KeyPair {
  return keyPairFromSeed(new Uint8Array(32).fill(n));
}

/** Sign an unsigned entry with `key` (which need not be the author's: tests forge with it). */
export function signWith(key: KeyPair, unsigned: UnsignedEntry): Entry {
  return { ...unsigned, sig: sigToString(sign(key, signingBytes(unsigned))) };
}

export function idOf(entry: Entry): string {
  return entryId(encodeEntry(entry));
}

/** A 64-hex-digit id that names no entry. */
export const fakeId = (n: number): string => n.toString(16).padStart(64, '0');

/** One valid body per kind; `n` varies names, ports and addresses. */
export const bodies = {
  node: (n = 1) => ({
    name: `node${n}`,
    gossip: `ws://10.0.0.${n % 250}:7000`,
    meshIp: `10.99.${Math.floor(n / 250) % 250}.${n % 250}`,
  }),
  offer: (service = 'web', port = 443, mode: 'auto' | 'manual' = 'manual') => ({
    service,
    port,
    proto: 'tcp',
    mode,
    leaseSeconds: 3600,
  }),
  subscribe: (provider: string, service = 'web') => ({ provider, service }),
  approve: (subscription: string) => ({ subscription }),
  revoke: (target: string) => ({ target }),
  grant: (subscription: string, subscriber: string, service = 'web', ip = '10.99.0.2') => ({
    subscription,
    subscriber,
    service,
    ip,
    expires: T0 + 3_600_000,
  }),
  ungrant: (grant: string, subscriber: string, service = 'web', ip = '10.99.0.2') => ({
    grant,
    subscriber,
    service,
    ip,
    reason: 'expired',
  }),
};

/** One author's feed under construction: each `next` signs an entry chained to the last. */
export class Feed {
  readonly entries: Entry[] = [];
  readonly ids: string[] = [];

  constructor(readonly key: KeyPair) {}

  get did(): string {
    return this.key.did;
  }

  get seq(): number {
    return this.entries.length;
  }

  /** Sign the next entry of this feed (not kept: see `push`). */
  make(kind: EntryKind, body: Record<string, unknown>, ts?: number): Entry {
    return signWith(this.key, {
      v: 1,
      author: this.key.did,
      seq: this.seq + 1,
      prev: this.ids.at(-1) ?? null,
      ts: ts ?? T0 + this.seq + 1,
      kind,
      body,
    });
  }

  /** Sign and keep the next entry; returns it. */
  push(kind: EntryKind, body: Record<string, unknown>, ts?: number): Entry {
    const e = this.make(kind, body, ts);
    this.entries.push(e);
    this.ids.push(idOf(e));
    return e;
  }

  /**
   * Keep, as this feed's next entry, one signed with `other`'s key: a bad
   * signature for this author, which later entries chain onto all the same.
   */
  pushForged(other: KeyPair, kind: EntryKind, body: Record<string, unknown>): Entry {
    const good = this.make(kind, body);
    const { sig: _sig, ...unsigned } = good;
    const e = { ...good, sig: signWith(other, unsigned).sig };
    this.entries.push(e);
    this.ids.push(idOf(e));
    return e;
  }

  /** `n` node records (cheap filler that is valid for any feed). */
  fill(n: number): Entry[] {
    return Array.from({ length: n }, () => this.push('node', bodies.node(this.seq + 1)));
  }

  /** Entry at seq (1-based). */
  at(seq: number): Entry {
    return this.entries[seq - 1]!;
  }

  idAt(seq: number): string {
    return this.ids[seq - 1]!;
  }
}

export const checked = (e: Entry): CheckedEntry => checkEntry(e);

/** A deep copy (entries are plain JSON data). */
export const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/**
 * The supervisor input of the real node on `stateDir`, quiet, with no metrics
 * or gossip listener (a fixed port would collide with any other node on the
 * host) unless `extra` gives a [gossip] section.
 */
export function nodeInput(stateDir: string, extra: Record<string, unknown> = {}) {
  return supervisorInput(
    parseConfig({
      metrics: { listen: '' },
      gossip: { listen: '' },
      // Never the host's firewall from a test node: the executor's memory backend.
      nft: { backend: 'memory' },
      ...extra,
      node: {
        state_dir: stateDir,
        log_level: process.env.MESHNODE_TEST_LOG ?? 'warn',
        ...(extra.node as Record<string, unknown> | undefined),
      },
    }),
  );
}

export interface RunningNode {
  sup: Supervisor;
  records: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Start the real node in-process on `stateDir`; call `stop()` (always) when done. */
export async function startNode(
  stateDir: string,
  extra: Record<string, unknown> = {},
  logger?: Logger,
): Promise<RunningNode> {
  const mem = memoryLogger('warn');
  const sup = new Supervisor(nodeInput(stateDir, extra), { logger: logger ?? mem.logger });
  const node: RunningNode = {
    sup,
    records: mem.records,
    stop: async () => {
      await sup.stop('test over');
    },
  };
  try {
    await sup.start();
  } catch (err) {
    await node.stop();
    throw err;
  }
  return node;
}

/** Run `fn` against a fresh node on `stateDir`, always stopping it. */
export async function withNode<T>(
  stateDir: string,
  fn: (sup: Supervisor, node: RunningNode) => Promise<T>,
  extra: Record<string, unknown> = {},
): Promise<T> {
  const node = await startNode(stateDir, extra);
  try {
    return await fn(node.sup, node);
  } finally {
    await node.stop();
  }
}

export interface AppendAck {
  id: string;
  author: string;
  seq: number;
  ts: number;
}

/** Append through the journal as the operator. */
export function append(
  sup: Supervisor,
  requestId: string,
  kind: string,
  body: unknown,
  timeoutMs?: number,
): Promise<AppendAck> {
  return sup.ask(
    'journal',
    'append',
    { requestId, kind, body },
    timeoutMs ? { timeoutMs } : undefined,
  ) as Promise<AppendAck>;
}

export function ingest(
  sup: Supervisor,
  entries: unknown[],
): Promise<{ appended: number; duplicates: number }> {
  return sup.ask('journal', 'ingest', { entries }, { timeoutMs: 30_000 }) as Promise<{
    appended: number;
    duplicates: number;
  }>;
}

export type { JournalStatus };

export const status = (sup: Supervisor) => sup.ask('journal', 'status') as Promise<JournalStatus>;

export const heads = (sup: Supervisor) =>
  sup.ask('journal', 'heads') as Promise<Record<string, number>>;

/** The journal's LMDB directory under a node's state directory. */
export const journalDir = (stateDir: string): string => join(stateDir, 'journal');

/**
 * Subscribe as the operator once the offer has reached this node: `subscribe`
 * refuses a service the node does not see offered (ERR_NO_SUCH_SERVICE), and
 * an offer made on another node a moment ago may still be on its way.
 */
export async function subscribeWhenOffered(
  sup: Supervisor,
  provider: string,
  service: string,
  deadlineMs = 15_000,
): Promise<AppendAck> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return (await sup.ask('grants', 'subscribe', { provider, service })) as AppendAck;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'ERR_NO_SUCH_SERVICE' && code !== 'ERR_NOT_FOUND') || Date.now() > end)
        throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
