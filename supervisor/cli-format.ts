/**
 * How the CLI prints things, one style for every verb: fixed-column tables
 * with upper-case headers, times as the clock shows them and as "ago" / "in",
 * ids cut to 12 hex digits (every verb takes a unique prefix of 8+ back),
 * DIDs cut to their first characters. The durations are the console's
 * (console/cells.ts), so a lease reads the same in both.
 */
import { duration } from './console/cells.js';

export { duration };

/** C0/C1 controls, DEL, and the bidi overrides and isolates: nothing a peer may send to a terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A string a peer may have written, made fit for a terminal and cut to `max`. */
export function safe(text: string | null | undefined, max = 64): string {
  if (text === null || text === undefined) return '-';
  const clean = text.replace(UNSAFE, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** Fixed columns, each padded to its widest cell. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** `key value` lines, the keys aligned: a single object (status, inspect, verify). */
export function fields(pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`.trimEnd()).join('\n')}\n`;
}

/** A DID as a table shows it: did:key:z6Mk + the first 8 characters after it. */
export function shortDid(did: string | null | undefined): string {
  if (!did) return '-';
  return did.length > 20 ? `${did.slice(0, 20)}…` : did;
}

/** An entry id as tables show it; any unique prefix of 8+ digits is taken back. */
export function shortId(id: string | null | undefined): string {
  return id ? safe(id, 64).slice(0, 12) : '-';
}

/** How long ago: 12s ago, 5m ago, 3h ago, 2d ago. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined || ms === 0) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** Time left: "in 59m12s", or "expired". */
export function inTime(ms: number, now = Date.now()): string {
  return ms <= now ? 'expired' : `in ${duration(ms - now)}`;
}

/** A wall-clock time as local date and time to the second: 2026-12-07 20:57:44. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The --json envelope's version. */
export const ENVELOPE = 1;

/** One --json failure line: {"v":1,"ok":false,"error":{code,message}}. */
export function errorLine(code: string, message: string): string {
  return `${JSON.stringify({ v: ENVELOPE, ok: false, error: { code, message } })}\n`;
}

/** One --json success line: {"v":1,"ok":true,"result":…}. */
export function okLine(result: unknown): string {
  return `${JSON.stringify({ v: ENVELOPE, ok: true, result })}\n`;
}
