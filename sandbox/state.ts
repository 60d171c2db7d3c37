/**
 * Where the host keeps each process's state between messages: in memory,
 * and, given a directory, in `<dir>/<process>.json`, replaced atomically
 * (write a temporary file, rename it over) after each message that changed
 * it. A pool thread that dies, or a node that restarts, loses nothing that
 * a finished message committed.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A process starts with an empty object as its State. */
export const INITIAL_STATE = '{}';

export class StateStore {
  private readonly states = new Map<string, string>();

  constructor(private readonly dir: string | null) {
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get(process: string): string {
    let s = this.states.get(process);
    if (s === undefined) {
      s = this.load(process);
      this.states.set(process, s);
    }
    return s;
  }

  set(process: string, state: string): void {
    if (this.states.get(process) === state) return;
    this.states.set(process, state);
    if (!this.dir) return;
    const file = this.file(process);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, state, { mode: 0o600 });
    renameSync(tmp, file);
  }

  private load(process: string): string {
    if (!this.dir) return INITIAL_STATE;
    try {
      const text = readFileSync(this.file(process), 'utf8');
      JSON.parse(text);
      return text;
    } catch {
      // Missing (first start) or unreadable: the process starts afresh rather than not at all.
      return INITIAL_STATE;
    }
  }

  private file(process: string): string {
    return join(this.dir!, `${process}.json`);
  }
}
