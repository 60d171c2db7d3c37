/**
 * The closed-mesh allowlist: a text file of DIDs, one per line, `#` starts a
 * comment. Re-read whenever its modification time or size changes (checked
 * at every handshake and by the gossiper's periodic tick), so an operator
 * edits it in place — no restart, no signal. A file that cannot be read or
 * holds a malformed line keeps the previous list and says why in the log:
 * a typo must not open (or empty) the mesh.
 */
import { readFileSync, statSync } from 'node:fs';
import { isDid } from '../../runtime/crypto/index.js';

export interface AllowlistLoad {
  changed: boolean;
  error?: string;
}

export class Allowlist {
  private entries = new Set<string>();
  private stamp = '';

  constructor(readonly path: string) {}

  has(did: string): boolean {
    return this.entries.has(did);
  }

  dids(): IterableIterator<string> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Re-read the file if it changed since the last read. */
  refresh(): AllowlistLoad {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs} ${st.size} ${st.ino}`;
    } catch (err) {
      return { changed: false, error: `cannot stat ${this.path}: ${(err as Error).message}` };
    }
    if (stamp === this.stamp) return { changed: false };
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      return { changed: false, error: `cannot read ${this.path}: ${(err as Error).message}` };
    }
    const next = new Set<string>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/#.*/, '').trim();
      if (line === '') continue;
      if (!isDid(line)) {
        return { changed: false, error: `${this.path}:${i + 1}: not an Ed25519 did:key` };
      }
      next.add(line);
    }
    this.stamp = stamp;
    this.entries = next;
    return { changed: true };
  }
}
