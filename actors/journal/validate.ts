/**
 * Everything the journal checks about one entry on its own, before it looks
 * at the feed it belongs to. Checks run cheapest first and each failure has
 * its own code:
 *
 *   ERR_MALFORMED_ENTRY  not an object, missing/extra fields, wrong types,
 *                        wrong `v`, prev/seq inconsistent (prev null iff seq 1)
 *   ERR_BAD_DID          author is not an Ed25519 did:key (the "wrong key for
 *                        DID" case: with did:key the DID *is* the key)
 *   ERR_UNKNOWN_KIND     kind is not one of ENTRY_KINDS
 *   ERR_SCHEMA           body is not a journal value or not the kind's schema
 *   ERR_TOO_LARGE        canonical form over MAX_ENTRY_BYTES
 *   ERR_BAD_SIGNATURE    signature fails the pinned Ed25519 rule
 *
 * Feed checks (seq gap, prev mismatch, equivocation) are the store's.
 */
import { E, MeshError } from '../../runtime/errors.js';
import {
  assertJournalValue,
  canonicalize,
  publicKeyFromDid,
  verify,
} from '../../runtime/crypto/index.js';
import { bodySchemas, isEntryKind } from '../../runtime/domain/entries.js';
import {
  ENTRY_VERSION,
  MAX_ENTRY_BYTES,
  entryId,
  sigFromString,
  signedCanonical,
  signingBytes,
  unsignedCanonical,
} from '../../runtime/domain/codec.js';
import type { Entry } from '../../runtime/domain/codec.js';
import type { EntryKind } from '../../runtime/domain/entries.js';

const utf8 = new TextEncoder();
/**
 * A body may take the entry limit less room for the other fields (author 56,
 * prev 64, sig 86 characters and the rest, ~330 bytes), so any entry over
 * MAX_ENTRY_BYTES has a body over this and is refused before its schema runs.
 */
export const MAX_BODY_BYTES = MAX_ENTRY_BYTES - 512;
const FIELDS = ['author', 'body', 'kind', 'prev', 'seq', 'sig', 'ts', 'v'];
const FIELD_SET = new Set(FIELDS);
const ID = /^[0-9a-f]{64}$/;
/** 64 bytes in unpadded base64url. */
/**
 * 64 bytes in unpadded base64url, canonical: 86 characters whose last one
 * carries 2 data bits and 4 zero bits, so it is one of A, Q, g, w. Without
 * that rule one signature has 16 spellings, each a different entry id, and
 * anyone relaying an entry could forge an "equivocation" of its author.
 */
const SIG = /^[A-Za-z0-9_-]{85}[AQgw]$/;

/** A structurally valid entry with its stored bytes and id. */
export interface CheckedEntry {
  entry: Entry;
  bytes: Uint8Array;
  id: string;
  /** The canonical JSON the bytes encode, when at hand (saves re-canonicalizing for the signature). */
  json?: string;
  /**
   * Set when the entry's own signature was not checked: it is taken on the
   * signature of a later entry of its feed whose prev chain reaches it
   * (planBatch makes sure one follows it in the same plan), and the audit
   * checks its own later (JournalStore `unaudited`).
   */
  unverifiedSig?: true;
}

/** Per-thread cache of authors' public keys: many entries share few authors, base58 costs µs. */
const KEY_CACHE_SIZE = 4096;
const authorKeys = new Map<string, Uint8Array>();

/** All checks but the signature (that one is CPU work and may run on a pool). */
export function checkEntry(raw: unknown, where = 'entry'): CheckedEntry {
  const { entry, json } = checkFields(raw, where);
  return sealJson(entry, json, where);
}

/**
 * checkEntry up to the encoding: every field checked, and the entry's
 * canonical JSON — not yet size-checked (`checkSize` on its UTF-8 length)
 * nor hashed. For callers that encode the JSON themselves (the pool task
 * writes a whole chunk into one buffer).
 */
export function checkFields(raw: unknown, where = 'entry'): { entry: Entry; json: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw malformed(`${where} must be an object`);
  }
  const e = raw as Record<string, unknown>;
  // As many distinct own keys as FIELDS, each one of them: exactly FIELDS.
  const keys = Object.keys(e);
  if (keys.length !== FIELDS.length || !keys.every((k) => FIELD_SET.has(k))) {
    throw malformed(`${where} must have exactly the fields ${FIELDS.join(', ')}`);
  }
  if (e.v !== ENTRY_VERSION) throw malformed(`${where}.v must be ${ENTRY_VERSION}`);
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) {
    throw malformed(`${where}.seq must be a positive safe integer`);
  }
  if (e.seq === 1 ? e.prev !== null : typeof e.prev !== 'string' || !ID.test(e.prev)) {
    throw malformed(`${where}.prev must be null for seq 1, else a 64-hex-digit id`);
  }
  if (!Number.isSafeInteger(e.ts) || (e.ts as number) < 0) {
    throw malformed(`${where}.ts must be a non-negative safe integer`);
  }
  if (typeof e.sig !== 'string' || !SIG.test(e.sig)) {
    throw malformed(`${where}.sig must be 86 base64url characters`);
  }
  if (typeof e.author !== 'string') throw malformed(`${where}.author must be a string`);
  authorKey(e.author);
  const bodyJson = checkBodyJson(e.kind, e.body, where);
  // Every top-level field is now known to need no escaping, so the entry's
  // canonical JSON is assembled around the body's (codec.ts; equal to
  // canonicalize(entry), which the codec tests hold it to).
  const entry = e as unknown as Entry;
  return { entry, json: signedCanonical(unsignedCanonical(entry, bodyJson), entry.sig) };
}

/** Kind known and body valid for it: what an append is checked for before it is signed. */
export function checkBody(
  kind: unknown,
  body: unknown,
  where = 'entry',
): asserts kind is EntryKind {
  checkBodyJson(kind, body, where);
}

/** checkBody, returning the body's canonical JSON (computed anyway for the size check). */
export function checkBodyJson(kind: unknown, body: unknown, where = 'entry'): string {
  if (!isEntryKind(kind)) {
    throw E.ERR_UNKNOWN_KIND(`${where}.kind ${JSON.stringify(kind)} is not a known kind`);
  }
  assertJournalValue(body, `${where}.body`);
  // Size before schema: bounded work for whatever arrives, and an oversized
  // body is refused as ERR_TOO_LARGE whatever else is wrong with it.
  const bodyJson = canonicalize(body);
  const bodyBytes = Buffer.byteLength(bodyJson);
  if (bodyBytes > MAX_BODY_BYTES) {
    throw E.ERR_TOO_LARGE(`${where}.body is ${bodyBytes} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  const parsed = bodySchemas[kind].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('');
    throw E.ERR_SCHEMA(`${where}.body${path} ${issue.message} (kind ${kind})`);
  }
  return bodyJson;
}

/** Encode, size-check and id an entry whose fields are known good. */
export function sealEntry(entry: Entry, where = 'entry'): CheckedEntry {
  return sealJson(entry, canonicalize(entry), where);
}

function sealJson(entry: Entry, json: string, where: string): CheckedEntry {
  const bytes = utf8.encode(json);
  checkSize(bytes.length, where);
  return { entry, bytes, id: entryId(bytes), json };
}

/** Refuse an entry whose canonical form is `bytes` long, if over MAX_ENTRY_BYTES. */
export function checkSize(bytes: number, where = 'entry'): void {
  if (bytes > MAX_ENTRY_BYTES) {
    throw E.ERR_TOO_LARGE(`${where} is ${bytes} bytes; the limit is ${MAX_ENTRY_BYTES}`);
  }
}

/** True when the entry's signature holds under its author's key (the pinned rule). */
export function signatureValid(entry: Entry, json?: string): boolean {
  // The signed bytes are the canonical JSON without the top-level sig member;
  // from the entry's own canonical JSON that is one splice (the last
  // occurrence of the member is the top-level one: only ts and v follow it).
  let signed: Uint8Array;
  if (json !== undefined) {
    const member = `,"sig":"${entry.sig}"`;
    const at = json.lastIndexOf(member);
    signed = utf8.encode(json.slice(0, at) + json.slice(at + member.length));
  } else {
    signed = signingBytes(entry);
  }
  return verify(sigFromString(entry.sig), signed, authorKey(entry.author));
}

/** `,"sig":"` then 86 characters and `"`: the top-level sig member of canonical JSON. */
const SIG_MEMBER = utf8.encode(',"sig":"');
const SIG_MEMBER_BYTES = SIG_MEMBER.length + 86 + 1;

/**
 * signatureValid from the entry's canonical bytes (as stored; `bytes` must be
 * the canonical JSON of `entry`, as checkFields makes it). The signed bytes
 * are these without the top-level sig member, which is followed only by
 * `,"ts":<ts>,"v":<v>}` — ASCII, so the member is found from the end without
 * decoding. A layout that is not that one fails the check, it never passes it.
 */
export function signatureValidBytes(entry: Entry, bytes: Uint8Array): boolean {
  const after = `,"ts":${entry.ts},"v":${entry.v}}`.length;
  const at = bytes.length - after - SIG_MEMBER_BYTES;
  if (at < 0) return false;
  for (let i = 0; i < SIG_MEMBER.length; i++) if (bytes[at + i] !== SIG_MEMBER[i]) return false;
  const signed = new Uint8Array(bytes.length - SIG_MEMBER_BYTES);
  signed.set(bytes.subarray(0, at));
  signed.set(bytes.subarray(at + SIG_MEMBER_BYTES), at);
  return verify(sigFromString(entry.sig), signed, authorKey(entry.author));
}

/**
 * Which entries of an untrusted batch get their own signature checked before
 * the batch is stored (1) and which ride on a later one (0): per author, the
 * entry with the highest seq — the tip its feed's chain in the batch ends
 * at. Its signature covers its prev, the id (a hash) of the entry before it,
 * which covers that entry's prev, and so on: one verified tip authenticates
 * every entry that links up to it, as hypercore's signed tree root does its
 * blocks. Anything without a string author and numeric seq is flagged (its
 * checks refuse it anyway). planBatch enforces the links.
 */
export function signatureTips(entries: readonly unknown[]): Uint8Array {
  const flags = new Uint8Array(entries.length);
  const tip = new Map<string, { index: number; seq: number }>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as { author?: unknown; seq?: unknown } | null;
    if (typeof e !== 'object' || e === null) {
      flags[i] = 1;
      continue;
    }
    const { author, seq } = e;
    if (typeof author !== 'string' || typeof seq !== 'number') {
      flags[i] = 1;
      continue;
    }
    const best = tip.get(author);
    if (!best || seq >= best.seq) tip.set(author, { index: i, seq });
  }
  for (const { index } of tip.values()) flags[index] = 1;
  return flags;
}

/** checkEntry and the signature: everything one entry can be checked for on its own. */
export function checkAndVerify(raw: unknown, where = 'entry'): CheckedEntry {
  const c = checkEntry(raw, where);
  if (!signatureValid(c.entry, c.json)) throw badSignature(where);
  return c;
}

function authorKey(did: string): Uint8Array {
  let key = authorKeys.get(did);
  if (key === undefined) {
    key = publicKeyFromDid(did);
    if (authorKeys.size >= KEY_CACHE_SIZE) authorKeys.delete(authorKeys.keys().next().value!);
    authorKeys.set(did, key);
  }
  return key;
}

export function badSignature(where: string): MeshError {
  return E.ERR_BAD_SIGNATURE(`${where} has an invalid signature`);
}

function malformed(message: string): MeshError {
  return E.ERR_MALFORMED_ENTRY(message);
}
