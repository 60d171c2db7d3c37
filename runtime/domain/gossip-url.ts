/**
 * Gossip endpoint URLs, as configured peers and `node` records name them.
 * A peer's record is hostile input that makes us open connections, so a
 * URL is dialed only in this narrow form: ws:// or wss://, a host that is an
 * IP literal or a DNS name, an explicit port, a plain path, no user info,
 * query or fragment. Anything else could aim our dialer at services that
 * are not gossip (an HTTP API behind a query string, a port range sweep).
 */
import { isIP } from 'node:net';

/** Longest URL we dial; node records allow 256 characters. */
const MAX_URL_CHARS = 512;
/** RFC 1123 host names: labels of letters, digits and hyphens. */
const DNS_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PLAIN_PATH = /^\/[A-Za-z0-9/_-]{0,128}$/;

export interface GossipUrl {
  tls: boolean;
  /** Without brackets for IPv6. */
  host: string;
  port: number;
  path: string;
  /** The URL as it should be dialed. */
  href: string;
}

/** The URL's parts, or why it is not one we dial. */
export function parseGossipUrl(text: string): GossipUrl | { error: string } {
  if (typeof text !== 'string' || text.length > MAX_URL_CHARS) return { error: 'too long' };
  const m = /^(wss?):\/\/(\[[0-9a-fA-F:.]+\]|[^/:?#@\s[\]]+):(\d{1,5})(\/[^?#\s]*)?$/.exec(text);
  if (!m) return { error: 'must be ws[s]://host:port/path with no user, query or fragment' };
  const [, scheme, rawHost, rawPort, rawPath] = m;
  const host = rawHost!.startsWith('[') ? rawHost!.slice(1, -1) : rawHost!;
  const bracketed = rawHost!.startsWith('[');
  if (bracketed ? isIP(host) !== 6 : isIP(host) === 0 && !DNS_NAME.test(host)) {
    return { error: 'host must be an IP address or a DNS name' };
  }
  const port = Number(rawPort);
  if (port < 1 || port > 65535) return { error: 'port must be 1..65535' };
  const path = rawPath ?? '/';
  if (!PLAIN_PATH.test(path)) return { error: 'path must be plain: letters, digits, / _ -' };
  return { tls: scheme === 'wss', host, port, path, href: text };
}

export const isGossipUrl = (text: string): boolean => !('error' in parseGossipUrl(text));
