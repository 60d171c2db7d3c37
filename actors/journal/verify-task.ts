/**
 * Piscina task: check a chunk of untrusted entries completely — structure,
 * schema, size, id and signature — off the writer's thread. The writer then
 * only chains and commits. One result per entry: its id and stored bytes, or
 * the coded reason it was refused.
 */
import { checkAndVerify } from './validate.js';

export type TaskResult =
  { ok: true; id: string; bytes: Uint8Array } | { ok: false; code: string; message: string };

export default function checkChunk({
  entries,
  offset,
}: {
  entries: unknown[];
  offset: number;
}): TaskResult[] {
  return entries.map((raw, i) => {
    try {
      const c = checkAndVerify(raw, `entries[${offset + i}]`);
      return { ok: true, id: c.id, bytes: c.bytes };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return {
        ok: false,
        code: e.code ?? 'ERR_MALFORMED_ENTRY',
        message: e.message ?? String(err),
      };
    }
  });
}
