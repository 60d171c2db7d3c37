/**
 * Piscina task for the journal bench's baseline: signature checks alone
 * ("pure signature verification throughput on all cores"), nothing else.
 */
import type { Entry } from '../../runtime/domain/codec.js';
import { signatureValid } from '../../actors/journal/validate.js';

export default function verifyOnly(entries: Entry[]): boolean[] {
  return entries.map((e) => signatureValid(e));
}
