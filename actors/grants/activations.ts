/**
 * The consumer's activations: for each subscription it activated, the
 * endpoint the provider returned and when the lease ends. Kept in one JSON
 * file in the state directory (not in the journal: what we were granted is
 * ours, and the journal is public to the mesh), replaced atomically so a
 * crash leaves the old or the new file, never half of one.
 */
import type { Activation } from '../../runtime/protocol/grants.js';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';

export type { Activation };

export class Activations {
  private readonly byId = new Map<string, Activation>();

  constructor(private readonly path: string) {
    if (!existsSync(path)) return;
    for (const a of JSON.parse(readFileSync(path, 'utf8')) as Activation[])
      this.byId.set(a.subscription, a);
  }

  all(): Activation[] {
    return [...this.byId.values()];
  }

  put(a: Activation): void {
    this.byId.set(a.subscription, a);
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.all(), null, 1), { mode: 0o600 });
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
  }
}
