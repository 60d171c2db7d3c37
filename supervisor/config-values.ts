/**
 * The values the config is checked against and filled in with, beyond its
 * schema: address shapes, and the defaults that come from the host (its
 * name) and the package (its version).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** The version a node announces in its record: package.json's (dist/supervisor → the root). */
export const PACKAGE_VERSION = packageVersion();

function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The host name as a node name: lower case, [a-z0-9_], starting with a letter. */
export function defaultNodeName(): string {
  const safe = hostname()
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9_]/g, '_');
  return (/^[a-z]/.test(safe) ? safe : `n${safe}`).slice(0, 32) || 'node';
}

/** "" or host:port with an IP literal (v6 in brackets) or localhost, port 0..65535. */
export function isListenAddress(s: string): boolean {
  if (s === '') return true;
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) > 65535) return false;
  const host = (m[1] ?? m[2])!;
  return host === 'localhost' || isIP(host) !== 0;
}

/** The host of a ws:// or wss:// URL ('' if it does not parse). */
export function urlHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

/** 127.0.0.0/8, ::1 or localhost (brackets around a v6 literal allowed). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

export function isCidr(s: string): boolean {
  const [ip, len, ...rest] = s.split('/');
  if (rest.length > 0 || !ip || !len || !/^\d{1,3}$/.test(len)) return false;
  const family = isIP(ip);
  return family !== 0 && Number(len) <= (family === 4 ? 32 : 128);
}
