/** Helpers for tests that spawn meshnode processes and read their JSON log lines. */
import type { ChildProcess } from 'node:child_process';

/** Read a child's stdout as JSON lines (non-JSON lines are skipped). */
export function jsonLines(proc: ChildProcess): {
  lines: Array<Record<string, unknown>>;
  closed: Promise<void>;
} {
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  const closed = new Promise<void>((resolve) => proc.stdout!.once('close', () => resolve()));
  return { lines, closed };
}
