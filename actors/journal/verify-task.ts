/**
 * Piscina task: verify a chunk of entries' signatures off the writer's
 * thread. Input entries are untrusted plain objects that already passed
 * checkEntry on the writer; the answer is one boolean per entry.
 */
import type { Entry } from './codec.js';
import { signatureValid } from './validate.js';

export default function verifyChunk(entries: Entry[]): boolean[] {
  return entries.map((e) => {
    try {
      return signatureValid(e);
    } catch {
      return false;
    }
  });
}
