/**
 * The CLI's long-running reads: `journal tail -f` (print what arrives, as
 * tail -f does) and `--watch` (redraw a command's answer every interval,
 * as watch(1) does). Both end on Ctrl-C with exit 0, and end with the
 * node's error when the node goes away.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdminClient } from './admin-client.js';
import type { Values } from './cli-commands.js';
import { clock, okLine } from './cli-format.js';
import { TAIL_HEAD, tailRow } from './cli-render-ops.js';
import type { TailRow } from './cli-render-ops.js';

/** How often `-f` asks for new arrivals: what "at once" means to a reader, cheap for the node. */
const FOLLOW_POLL_MS = 500;
/** Arrivals fetched per ask while following (a burst is printed over several asks). */
const FOLLOW_BATCH = 1000;

/**
 * `journal tail`: the newest N (or those after an arrival), then, with
 * `-f`, every new arrival until `signal` aborts. `--json` prints one
 * envelope of all rows; with `-f` one envelope per row, a line each.
 */
export async function follow(
  client: AdminClient,
  values: Values,
  json: boolean,
  write: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const n = Number(values.lines);
  const first = (await client.call(
    'journal.tail',
    typeof values.after === 'string' ? { after: Number(values.after), limit: n } : { last: n },
  )) as TailRow[];
  const keepGoing = values.follow === true;
  if (json && !keepGoing) {
    write(okLine(first));
    return;
  }
  const print = (rows: TailRow[]) => {
    for (const r of rows) {
      write(json ? okLine(r) : tailRow(r));
    }
  };
  if (!json && (first.length > 0 || keepGoing)) write(TAIL_HEAD);
  if (!json && first.length === 0 && !keepGoing) write('no entries yet\n');
  print(first);
  if (!keepGoing) return;
  let last = first.at(-1)?.arrival ?? (await lastArrival(client));
  while (!signal.aborted) {
    await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => {});
    if (signal.aborted) return;
    const rows = (await client.call('journal.tail', {
      after: last,
      limit: FOLLOW_BATCH,
    })) as TailRow[];
    print(rows);
    last = rows.at(-1)?.arrival ?? last;
  }
}

/** `--watch`: the command's answer, redrawn every interval (a new screen on a terminal). */
export async function watch(
  fetch: () => Promise<unknown>,
  opts: {
    intervalMs: number;
    title: string;
    print: (result: unknown) => string;
    clear: boolean;
    write: (text: string) => void;
  },
  signal: AbortSignal,
): Promise<void> {
  let first = true;
  while (!signal.aborted) {
    const result = await fetch();
    const body = opts.print(result);
    // Piped (a log, a script): each answer after the first is set off by a blank line.
    const gap = first || opts.clear ? '' : '\n';
    first = false;
    // watch(1)'s header: the command and the time, then the answer.
    opts.write(
      opts.clear
        ? `\x1b[H\x1b[2J${opts.title}    every ${opts.intervalMs / 1000}s, ${clock(Date.now())}\n\n${body}`
        : gap + body,
    );
    await sleep(opts.intervalMs, undefined, { signal }).catch(() => {});
  }
}

/** The newest arrival number (0 for an empty journal): where following starts when nothing was shown. */
async function lastArrival(client: AdminClient): Promise<number> {
  const rows = (await client.call('journal.tail', { last: 1 })) as TailRow[];
  return rows[0]?.arrival ?? 0;
}
