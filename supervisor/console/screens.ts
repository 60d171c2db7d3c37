/**
 * The console's two full-body screens over the panes: the ? help (every
 * key) and the inspect view of one actor (Enter on the table). Pure, as
 * render.ts: state in, lines out; peer text reaches the screen only through
 * `line` (printable ASCII).
 */
import { clockTime, line, megabytes, micros } from './cells.js';
import type { ScreenLine, Viewport } from './cells.js';
import type { ConsoleState } from './model.js';

/** The ? screen: every key, what it does (ASCII, fits 80 columns). */
export const HELP_SCREEN: readonly string[] = [
  ' keys of the console (any key closes this)',
  '',
  '  q, Ctrl-C    leave (the terminal is given back as it was)',
  '  j k, arrows  select an actor in the table',
  '  Enter        inspect the selected actor: mailbox, messages, latency,',
  '               recent errors in full, its state; Esc closes, j k move on',
  '  < > i        sort by the column left / right of the current one; invert',
  '  r  K         restart / kill the selected actor (asks y/N)',
  '  t  x         trace the selected actor (count and seconds); stop it',
  '  1-6, Tab     lower pane: peers, feeds, grants, trace, directory, members',
  '  [ ]          pick a row in the grants pane (a grant, an activation,',
  '               a subscription waiting for approval)',
  '  a            approve the picked subscription (y/N), else type an id',
  '  v            revoke the picked row (y/N), else type an id (then y/N)',
  '',
  ' ids can be typed as a unique prefix of 4+ hex digits. The console polls',
  ' the node once a second; its own reads are not counted in MSG/S or traces.',
];

/** The inspect view: one actor as the supervisor and the actor itself describe it. */
export function inspectView(state: ConsoleState, { width, now }: Viewport): ScreenLine[] {
  const v = state.inspect!;
  const out = [line(` inspect ${v.actor}  (Esc closes; j k: the next actor)`, width, 'header')];
  if (v.error) return [...out, line(`  ${v.error}`, width, 'error')];
  const r = v.result;
  if (!r) return [...out, line('  asking the node...', width, 'dim')];
  const sup = r.supervision;
  const st = r.stats;
  const pair = (k: string, val: string, style: 'normal' | 'error' = 'normal') =>
    out.push(line(`  ${k.padEnd(10)} ${val}`, width, style));
  if (sup) {
    pair('actor', `${sup.restart}, ${sup.state}, thread ${sup.threadId ?? '-'}`);
    pair('started', sup.startedAt ? clockTime(sup.startedAt, now) : '-');
    pair('restarts', String(sup.restarts));
    if (sup.lastExit)
      pair(
        'last exit',
        `${sup.lastExit.code} ${sup.lastExit.reason}`,
        sup.lastExit.abnormal ? 'error' : 'normal',
      );
  }
  pair('mailbox', `${st.depth} waiting, ${st.running} running (high water ${st.highWater})`);
  pair(
    'messages',
    `${st.received} in, ${st.handled} handled, ${st.rejected} refused, ${st.deadLetters} dead` +
      (st.observed ? `, ${st.observed} console reads` : ''),
  );
  pair(
    'latency',
    st.latency.count === 0
      ? '-'
      : `p50 ${micros(st.latency.p50Us)} p99 ${micros(st.latency.p99Us)} max ${micros(st.latency.maxUs)}`,
  );
  pair('heap', megabytes(st.heapUsed));
  for (const l of r.links)
    pair('link', `${l.peer} ${l.state}, ${l.pending} pending, ${l.queued} queued`);
  const errors = st.recentErrors ?? (st.lastError ? [{ at: 0, action: '?', ...st.lastError }] : []);
  out.push(line(`  recent errors: ${errors.length}`, width));
  // In full: wrapped, not cut (the table's LAST ERROR column is 15 characters).
  for (const e of errors.slice(-4).reverse()) {
    const at = e.at ? new Date(e.at).toTimeString().slice(0, 8) : '';
    const text = `${at} ${e.action}: ${e.code}: ${e.message}`.trim();
    for (const part of wrap(text, width - 4)) out.push(line(`    ${part}`, width, 'error'));
  }
  out.push(line('  state:', width));
  for (const l of JSON.stringify(r.state ?? null, null, 1).split('\n'))
    for (const part of wrap(l, width - 4)) out.push(line(`    ${part}`, width));
  return out;
}

/** `text` cut into pieces of at most `width` characters (at most 6 pieces: a 10 KB message stays a few lines). */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length && out.length < 6; i += width) out.push(text.slice(i, i + width));
  if (out.length === 6 && text.length > 6 * width) out[5] = `${out[5]!.slice(0, width - 3)}...`;
  return out.length ? out : [''];
}
