/**
 * This node's own `node` record (docs/design.md §9): what it announces so
 * peers can list and dial it. Pure over the options and what listening
 * found out (the port, whether TLS is on).
 */
import { isIP } from 'node:net';
import type { Logger } from '../../runtime/log.js';
import type { JournalPort } from './journal-port.js';
import { parseHostPort } from './server.js';

export interface NodeRecordBody {
  name: string;
  gossip: string;
  meshIp: string;
  version: string;
}

export interface RecordOptions {
  nodeName: string;
  version: string;
  /** The URL peers dial; '' builds one from `listen` when it names a concrete IP. */
  advertise: string;
  /** The node's mesh IP; '' takes the advertised host when it is an IP. */
  meshIp: string;
  listen: string;
  path: string;
}

/**
 * The advertised URL (or one built from `listen` when it names a concrete IP
 * and the port is known), the mesh IP (or the URL's host when it is an IP).
 * Null when there is nothing a peer could dial, or no mesh IP to grant to.
 */
export function ownRecord(o: RecordOptions, port: number, tls: boolean): NodeRecordBody | null {
  let gossip = o.advertise;
  if (gossip === '' && o.listen !== '' && port > 0) {
    const { host } = parseHostPort(o.listen);
    // A wildcard listen says nothing about which address peers reach.
    const concrete = isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::';
    if (concrete) {
      const h = isIP(host) === 6 ? `[${host}]` : host;
      gossip = `${tls ? 'wss' : 'ws'}://${h}:${port}${o.path}`;
    }
  }
  if (gossip === '') return null;
  let meshIp = o.meshIp;
  if (meshIp === '') {
    const host = new URL(gossip).hostname.replace(/^\[|\]$/g, '');
    meshIp = isIP(host) !== 0 ? host : '';
  }
  if (meshIp === '') return null;
  return { name: o.nodeName, gossip, meshIp, version: o.version };
}

/**
 * Announces the record: only once our own head is confirmed (an
 * announcement from a stale copy of our feed would fork it), and asked of
 * the journal only when the record or the mesh changed (the journal itself
 * appends only when a field differs), so it is cheap to call on every tick.
 */
export class RecordAnnouncer {
  /** Null: nothing a peer could dial (set once listening told the port). */
  record: NodeRecordBody | null = null;
  /** The record and mesh last announced, so an unchanged one is not asked for again. */
  private announced = '';

  constructor(
    private readonly journal: JournalPort,
    private readonly log: Logger,
    private readonly enabled: boolean,
  ) {}

  /** Build the record once the listener's port is known; say so when there can be none. */
  listening(o: RecordOptions, port: number, tls: boolean): void {
    this.record = ownRecord(o, port, tls);
    if (!this.record) {
      this.log.warn(
        { listen: o.listen },
        'no node record: set gossip.advertise (and node.mesh_ip) so peers can find this node',
      );
    }
  }

  async announce(meshId: string | null): Promise<void> {
    const record = this.record;
    if (!record || !this.enabled) return;
    const key = `${meshId} ${JSON.stringify(record)}`;
    if (key === this.announced) return;
    this.announced = key;
    try {
      const r = await this.journal.announce(record);
      if (r.appended) this.log.info({ record }, 'node record announced');
    } catch (err) {
      this.announced = '';
      this.log.debug({ err: (err as Error).message }, 'node record not announced yet');
    }
  }
}
