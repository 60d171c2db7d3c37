/**
 * Input mutators for the fuzz suite, driven by a seeded Rng (report.ts) so
 * every failure reproduces from the printed seed and iteration number.
 *  - `mutateValue`: structural — a field deleted, added, retyped, a huge or
 *    hostile string, a deep nest, numbers at and past the safe range;
 *  - `mutateText`: textual — characters flipped, inserted, deleted, slices
 *    duplicated, the text cut short, quotes and brackets, escapes, non-ASCII.
 */
import type { Rng } from './report.js';

const HOSTILE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\u001b[2J',
  '__proto__',
  'constructor',
  'toString',
  '../../etc/passwd',
  '; rm -rf /',
  '$(id)',
  '`id`',
  '%s%n',
  '\ud800',
  '\uffff',
  'did:key:z6Mk',
  '10.0.0.1',
  '::1',
  'fd00::1%eth0',
  '0x10',
  '1e309',
  'NaN',
  'null',
  '{}',
  '[]',
  'x'.repeat(70_000),
];
const HOSTILE_NUMBERS = [
  0,
  -1,
  1,
  0.5,
  -0,
  2 ** 31,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER,
  1e308,
  65535,
  65536,
];

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 4 : 7)) {
    case 0:
      return r.pick(HOSTILE_STRINGS);
    case 1:
      return r.pick(HOSTILE_NUMBERS);
    case 2:
      return r.pick([true, false, null]);
    case 3:
      return String.fromCharCode(...Array.from({ length: r.int(40) }, () => r.int(0x3000)));
    case 4:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 5: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--)
        o[r.pick(HOSTILE_STRINGS).slice(0, 12)] = randomValue(r, depth + 1);
      return o;
    }
    default: {
      // A deep nest: parsers and validators must not recurse to death.
      let v: unknown = 1;
      for (let i = 0; i < 2000 + r.int(20_000); i++) v = r.int(2) ? [v] : { a: v };
      return v;
    }
  }
}

/** Paths to every value inside `v` (objects and arrays), the root included as []. */
function paths(
  v: unknown,
  at: Array<string | number> = [],
  out: Array<Array<string | number>> = [],
) {
  out.push(at);
  if (out.length > 200) return out;
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** A structurally mutated deep copy of `v` (1–3 mutations). */
export function mutateValue(r: Rng, v: unknown): unknown {
  let root = JSON.parse(JSON.stringify(v)) as unknown;
  for (let n = 1 + r.int(3); n > 0; n--) {
    const all = paths(root);
    const path = r.pick(all);
    const parentPath = path.slice(0, -1);
    const key = path[path.length - 1];
    let parent: unknown = root;
    for (const k of parentPath) parent = (parent as Record<string | number, unknown>)[k];
    const target = key === undefined ? root : (parent as Record<string | number, unknown>)[key];
    const op = r.int(6);
    let replacement: unknown = target;
    if (op === 0 && key !== undefined) {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, unknown>)[key as string];
      continue;
    } else if (op === 1 && target && typeof target === 'object' && !Array.isArray(target)) {
      (target as Record<string, unknown>)[r.pick(['extra', '__proto__', 'v', 't', 'id', 'x'])] =
        randomValue(r);
      continue;
    } else if (op === 2 && typeof target === 'string') {
      replacement = mutateText(r, target);
    } else if (op === 3 && typeof target === 'number') {
      replacement = r.pick(HOSTILE_NUMBERS);
    } else if (op === 4 && Array.isArray(target)) {
      replacement = [...target, ...target, randomValue(r)];
    } else {
      replacement = randomValue(r);
    }
    if (key === undefined) root = replacement;
    else (parent as Record<string | number, unknown>)[key] = replacement;
  }
  return root;
}

/** A textually mutated copy of `s` (1–4 edits). */
export function mutateText(r: Rng, s: string): string {
  let t = s;
  for (let n = 1 + r.int(4); n > 0; n--) {
    const i = r.int(t.length + 1);
    switch (r.int(8)) {
      case 0:
        t = t.slice(0, i) + t.slice(i + 1 + r.int(8));
        break;
      case 1:
        t =
          t.slice(0, i) +
          r.pick(['"', '{', '}', '[', ']', ',', ':', '\\', '=', '\n', '#', "'"]) +
          t.slice(i);
        break;
      case 2:
        t = t.slice(0, i) + String.fromCharCode(r.int(0x10000)) + t.slice(i + 1);
        break;
      case 3: {
        const j = Math.min(t.length, i + r.int(64));
        t = t.slice(0, j) + t.slice(i, j) + t.slice(j);
        break;
      }
      case 4:
        t = t.slice(0, i);
        break;
      case 5:
        t =
          t.slice(0, i) +
          r.pick(['\\u0000', '\\ud800', '1e999', '-0', 'null', 'true', '"__proto__"']) +
          t.slice(i);
        break;
      case 6:
        t = t.slice(0, i) + String.fromCharCode(t.charCodeAt(i) ^ (1 << r.int(7))) + t.slice(i + 1);
        break;
      default:
        t = t.slice(0, i) + r.pick(HOSTILE_STRINGS).slice(0, 200) + t.slice(i);
    }
  }
  return t;
}
