/**
 * What comes out of a process is untrusted text. The host parses it (no
 * `__proto__` key survives), keeps only the contract's shape, and enforces
 * the reserved tags on everything the process sends, replies or forwards:
 * `From` is always the process itself, and no tag may claim a field the
 * host or the network vouches for (owner, signature, timestamp, id…).
 */
import { NON_EXTRACTABLE_TAGS, NON_FORWARDABLE_TAGS } from './types.js';
import type { Assignment, OutMessage, ProcessResult, SpawnRequest, Tag } from './types.js';

/** Reserved tags a process may still set: where replies go, and its own reference counter. */
const SETTABLE = new Set(['Reply-To', 'Reference', 'Forwarded-By']);
const RESERVED = new Set(
  [...NON_EXTRACTABLE_TAGS, ...NON_FORWARDABLE_TAGS].filter((t) => !SETTABLE.has(t)),
);

/** JSON.parse that drops `__proto__` keys: parsed data must never carry a prototype. */
export function parseData(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) => (key === '__proto__' ? undefined : value));
}

export function emptyResult(): ProcessResult {
  return { Output: {}, Messages: [], Spawns: [], Assignments: [] };
}

/** An error result: the message, with an empty outbox (nothing of a failed run leaves). */
export function errorResult(
  code: NonNullable<ProcessResult['Code']>,
  error: string,
): ProcessResult {
  return { ...emptyResult(), Error: error, Code: code };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The tags a process may send: well-formed, not reserved; `Forwarded-By` is always the process. */
export function outboundTags(raw: unknown, processId: string): Tag[] {
  if (!Array.isArray(raw)) return [];
  const tags: Tag[] = [];
  for (const t of raw) {
    if (!isRecord(t) || typeof t.name !== 'string' || typeof t.value !== 'string') continue;
    if (RESERVED.has(t.name)) continue;
    tags.push({
      name: t.name,
      value: t.name === 'Forwarded-By' ? processId : t.value,
    });
  }
  return tags;
}

function outMessage(raw: unknown, processId: string): OutMessage | null {
  if (!isRecord(raw) || typeof raw.Target !== 'string' || raw.Target === '') return null;
  return {
    Target: raw.Target,
    From: processId,
    Data: text(raw.Data),
    Tags: outboundTags(raw.Tags, processId),
  };
}

function spawn(raw: unknown, processId: string): SpawnRequest | null {
  if (!isRecord(raw) || typeof raw.Module !== 'string') return null;
  return { Module: raw.Module, Data: text(raw.Data), Tags: outboundTags(raw.Tags, processId) };
}

function assignment(raw: unknown): Assignment | null {
  if (!isRecord(raw) || typeof raw.Message !== 'string' || !Array.isArray(raw.Processes))
    return null;
  const processes = raw.Processes.filter((p): p is string => typeof p === 'string');
  return { Processes: processes, Message: raw.Message };
}

/** The checked result of a run, from the JSON text the process produced. */
export function sanitizeResult(json: string, processId: string): ProcessResult {
  let raw: unknown;
  try {
    raw = parseData(json);
  } catch {
    return errorResult('ERR_SANDBOX_HANDLER', 'the result is not JSON');
  }
  if (!isRecord(raw)) return errorResult('ERR_SANDBOX_HANDLER', 'the result is not an object');
  const list = <T>(v: unknown, f: (x: unknown) => T | null): T[] =>
    Array.isArray(v) ? v.map(f).filter((x): x is T => x !== null) : [];
  return {
    Output: raw.Output === undefined ? {} : raw.Output,
    Messages: list(raw.Messages, (m) => outMessage(m, processId)),
    Spawns: list(raw.Spawns, (s) => spawn(s, processId)),
    Assignments: list(raw.Assignments, assignment),
  };
}
