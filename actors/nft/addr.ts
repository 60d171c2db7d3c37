/**
 * IP literals and CIDR blocks, parsed strictly and printed canonically.
 *
 * Strict, because these strings end up in an nft batch: only a dotted quad
 * without leading zeros (`010.0.0.1` would be octal to some parsers) or an
 * IPv6 literal without zone id or brackets is an address here. Canonical,
 * because grants are keyed by address: `fd00:0::1`, `FD00::1` and `fd00::1`
 * are one grant, and the executor compares its own keys with what
 * `nft -j list` prints, so both sides go through `parseIp` and meet as the
 * RFC 5952 text.
 */

export type Family = 4 | 6;

/**
 * An address and its value: a plain number for IPv4 (no BigInt per grant:
 * this is parsed 100,000 times in a large reconcile), a BigInt for IPv6.
 */
export interface Addr {
  family: Family;
  /** IPv4: the 32-bit value (0 for IPv6). */
  v4: number;
  /** IPv6: the 128-bit value (0n for IPv4). */
  v6: bigint;
  /** Canonical text: dotted quad, or RFC 5952 (lower case, longest zero run as ::). */
  text: string;
}

export interface Cidr {
  family: Family;
  len: number;
  /** IPv4: the network and its mask as 32-bit patterns. */
  v4: number;
  mask4: number;
  /** IPv6: the network, and how far to shift an address to compare it. */
  v6: bigint;
  shift6: bigint;
  text: string;
}

/** The longest IPv6 literal with an embedded dotted quad: 45 characters. Longer is not an address. */
const MAX_IP_LENGTH = 45;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;

/** Parse an IP literal; null when it is not one (strictly). */
export function parseIp(s: string): Addr | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_IP_LENGTH) return null;
  const v4 = v4Number(s);
  if (v4 >= 0) return { family: 4, v4, v6: 0n, text: s };
  if (!IPV6_CHARS.test(s)) return null;
  const groups = v6Groups(s);
  if (!groups) return null;
  let v6 = 0n;
  for (const g of groups) v6 = (v6 << 16n) | BigInt(g);
  return { family: 6, v4: 0, v6, text: v6Text(groups) };
}

/** Parse `ADDR/LEN` with the host bits zero (10.0.0.0/8, not 10.0.0.1/8); null otherwise. */
export function parseCidr(s: string): Cidr | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  if (slash < 0 || !/^(?:0|[1-9]\d{0,2})$/.test(s.slice(slash + 1))) return null;
  const addr = parseIp(s.slice(0, slash));
  const len = Number(s.slice(slash + 1));
  if (!addr) return null;
  const text = `${addr.text}/${len}`;
  if (addr.family === 4) {
    if (len > 32) return null;
    // Int32 bit patterns: ~0 << 32 would be ~0 (shifts are mod 32), so /0 is spelled out.
    const mask4 = len === 0 ? 0 : ~0 << (32 - len);
    if ((addr.v4 & ~mask4) !== 0) return null;
    return { family: 4, len, v4: addr.v4 & mask4, mask4, v6: 0n, shift6: 0n, text };
  }
  if (len > 128) return null;
  const shift6 = BigInt(128 - len);
  if ((addr.v6 >> shift6) << shift6 !== addr.v6) return null;
  return { family: 6, len, v4: 0, mask4: 0, v6: addr.v6, shift6, text };
}

/** Is `a` inside one of `cidrs` (same family only: no v4-mapped crossings)? */
export function inCidrs(a: Addr, cidrs: readonly Cidr[]): boolean {
  for (const c of cidrs) {
    if (c.family !== a.family) continue;
    if (a.family === 4 ? (a.v4 & c.mask4) === c.v4 : a.v6 >> c.shift6 === c.v6 >> c.shift6) {
      return true;
    }
  }
  return false;
}

/**
 * A dotted quad as a number, or -1: four decimal octets 0-255, no leading
 * zeros, nothing else (by hand rather than a regex and a split: this runs per grant).
 */
function v4Number(s: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** The eight 16-bit groups of an IPv6 literal, or null. */
function v6Groups(s: string): number[] | null {
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string, last: boolean): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (last && i === pieces.length - 1 && p.includes('.')) {
        // An embedded IPv4 (::ffff:10.0.0.1) is two groups.
        const v = v4Number(p);
        if (v < 0) return null;
        out.push(v >>> 16, v & 0xffff);
      } else if (HEX_GROUP.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  if (halves.length === 1) {
    const all = parse(s, true);
    return all && all.length === 8 ? all : null;
  }
  const head = parse(halves[0]!, false);
  const tail = parse(halves[1]!, true);
  if (!head || !tail || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952 §4: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as ::. */
function v6Text(groups: number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
