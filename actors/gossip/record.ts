/**
 * This node's own `node` record (docs/design.md §9): what it announces so
 * peers can list and dial it. Pure over the options and what listening
 * found out (the port, whether TLS is on).
 */
import { isIP } from 'node:net';
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
