/**
 * What offering a port would cut off. An offer turns the port into "granted
 * sources only": the executor's drop rule applies to every packet of every
 * source not in the set, established connections included. Offering tcp/22
 * (the README's own example) would lock the operator out of SSH, and any
 * port with live connections drops them. Both need `force`; the refusal
 * says what would be dropped (ERR_OFFER_DISRUPTS).
 *
 * Connections are read from /proc/net/tcp and tcp6 of the node's network
 * namespace (the one the firewall filters): state 01 is ESTABLISHED, the
 * local address is `HEXIP:HEXPORT`.
 */
import { readFileSync } from 'node:fs';

/** The port an operator reaches the host on: never guarded without being told twice. */
const SSH_PORT = 22;
/** How many connections the refusal names; the count says the rest. */
const NAMED_CONNECTIONS = 3;
const TCP_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];
const ESTABLISHED = '01';
const LISTEN = '0A';

export interface Disruption {
  /** Why the offer would hurt, in one sentence an operator acts on. */
  reason: string;
}

/** What offering (proto, port) would drop, or null when nothing is known to. */
export function disruption(
  proto: string,
  port: number,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Disruption | null {
  if (proto !== 'tcp') return null; // UDP keeps no connections to drop
  const peers = establishedTo(port, read);
  const parts: string[] = [];
  if (port === SSH_PORT) parts.push('tcp/22 is SSH: every source not granted loses it');
  if (peers.length > 0) {
    const named = peers.slice(0, NAMED_CONNECTIONS).join(', ');
    const more =
      peers.length > NAMED_CONNECTIONS ? ` and ${peers.length - NAMED_CONNECTIONS} more` : '';
    parts.push(
      `${peers.length} established connection(s) to tcp/${port} would be dropped (from ${named}${more})`,
    );
  }
  return parts.length === 0
    ? null
    : { reason: `${parts.join('; ')}. Offer again with --force to go ahead` };
}

/**
 * Remote addresses of the established TCP connections to a service on
 * `port`: only when something listens on it (an outbound connection that
 * happens to use the port as its ephemeral source is not a service there).
 */
export function establishedTo(port: number, read: (path: string) => string): string[] {
  const out: string[] = [];
  let listening = false;
  for (const table of TCP_TABLES) {
    let text: string;
    try {
      text = read(table);
    } catch {
      continue; // no IPv6, or no /proc: nothing known
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const [, localPort] = f[1]!.split(':');
      if (parseInt(localPort ?? '', 16) !== port) continue;
      if (f[3] === LISTEN) listening = true;
      else if (f[3] === ESTABLISHED) out.push(remoteOf(f[2]!));
    }
  }
  return listening ? out : [];
}

/** `0100007F:D431` (little-endian words) as `127.0.0.1:54321`; IPv6 kept as hex words. */
function remoteOf(field: string): string {
  const [hexIp, hexPort] = field.split(':') as [string, string];
  const port = parseInt(hexPort, 16);
  if (hexIp.length === 8) {
    const b = Buffer.from(hexIp, 'hex').reverse();
    return `${[...b].join('.')}:${port}`;
  }
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = Buffer.from(hexIp.slice(i, i + 8), 'hex')
      .reverse()
      .toString('hex');
    words.push(w.slice(0, 4), w.slice(4));
  }
  return `[${words.map((w) => w.replace(/^0+(?=.)/, '')).join(':')}]:${port}`;
}
