/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the byte string that journal
 * signatures and entry ids are computed over.
 *
 * `canonicalize` / `canonicalBytes` wrap the `canonicalize` npm package (a
 * small, dependency-free JCS implementation that passes the cyberphone test
 * suite in ../shared/vectors/jcs). They accept any JSON value, floats
 * included, since JCS itself defines how to print them.
 *
 * The journal is stricter: `assertJournalValue` admits only strings, safe
 * integers, booleans, null, arrays and plain objects. No floats (their
 * shortest-round-trip printing is where JCS implementations disagree in
 * practice), no NaN/Infinity, no undefined (JSON drops it silently, so the
 * signed bytes would not say what the caller built), no Date/Map/class
 * instances/typed arrays (their JSON form depends on toJSON, not on data).
 * It throws MeshError('ERR_SCHEMA') naming the offending path, e.g.
 * `body.port must be a safe integer`.
 */
import jcs from 'canonicalize';
import { E } from '../errors.js';

/** Deepest nesting `assertJournalValue` accepts (arrays and objects). */
export const MAX_JOURNAL_DEPTH = 64;

const encoder = new TextEncoder();

/**
 * The RFC 8785 canonical JSON text of `value`.
 * Throws MeshError('ERR_SCHEMA') if the value has no JSON form (undefined,
 * a function or symbol at the top, NaN/Infinity, a lone surrogate, a cycle).
 */
export function canonicalize(value: unknown): string {
  let out: string | undefined;
  try {
    out = jcs(value);
  } catch (err) {
    throw E.ERR_SCHEMA(
      `value cannot be canonicalized: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof out !== 'string') throw E.ERR_SCHEMA(`value of type ${typeof value} has no JSON form`);
  return out;
}

/** UTF-8 bytes of the canonical JSON of `value` (what is signed and hashed). */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}

/** A value the journal accepts (see `assertJournalValue`). */
export type JournalValue =
  string | number | boolean | null | JournalValue[] | { [key: string]: JournalValue };

/** With the u flag a valid pair is one code point, so only lone surrogates are in Cs. */
const LONE_SURROGATE = /\p{Cs}/u;
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Throws MeshError('ERR_SCHEMA') unless `value` is a journal value: strings
 * (well-formed UTF-16, no lone surrogates), safe integers, booleans, null,
 * arrays (no holes) and plain objects (prototype Object.prototype or null, no
 * symbol keys), nested at most MAX_JOURNAL_DEPTH deep. `path` names the value
 * in the message (`body` → `body.port must be a safe integer`).
 */
export function assertJournalValue(value: unknown, path: string): asserts value is JournalValue {
  check(value, path, 0);
}

function check(value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value))
        fail(path, 'must be a well-formed string (no lone surrogates)');
      return;
    case 'number':
      if (!Number.isSafeInteger(value)) fail(path, 'must be a safe integer');
      return;
    case 'boolean':
      return;
    case 'undefined':
      fail(path, 'must not be undefined');
      return;
    case 'object':
      break;
    default:
      fail(path, `must not be a ${typeof value}`);
  }
  if (value === null) return;
  if (depth >= MAX_JOURNAL_DEPTH) fail(path, `is nested deeper than ${MAX_JOURNAL_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) fail(`${path}[${i}]`, 'must not be a hole (sparse array)');
      check(value[i], `${path}[${i}]`, depth + 1);
    }
    return;
  }
  if (!isPlainObject(value)) fail(path, `must be a plain object, not ${describe(value)}`);
  if (Object.getOwnPropertySymbols(value).length > 0) fail(path, 'must not have symbol keys');
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) check(obj[key], member(path, key), depth + 1);
}

/** A plain object, also one made in another realm (vm context): its prototype is an Object.prototype or null. */
function isPlainObject(value: object): boolean {
  if (Object.prototype.toString.call(value) !== '[object Object]') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function describe(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an exotic object';
}

function member(path: string, key: string): string {
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function fail(path: string, why: string): never {
  throw E.ERR_SCHEMA(`${path} ${why}`);
}
