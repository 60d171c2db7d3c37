/**
 * The console's cells and lines: fixed columns, the one stretching column,
 * and the formatting of durations, rates, sizes and ids. Everything drawn
 * goes through `printable`, so only printable ASCII reaches the terminal
 * (render.ts says why).
 */
export type Style = 'normal' | 'bar' | 'header' | 'selected' | 'error' | 'dim';

export interface ScreenLine {
  text: string;
  style: Style;
}

export interface Cell {
  width: number;
  right: boolean;
}

export function fixedWidth(cols: Cell[]): number {
  return cols.reduce((n, c) => n + c.width, 0) + cols.length - 1;
}

/** Give the one zero-width column whatever the others leave (at least 4). */
export function withRest<C extends Cell>(cols: C[], width: number): C[] {
  const rest = Math.max(4, width - 1 - fixedWidth(cols));
  return cols.map((c) => (c.width === 0 ? { ...c, width: rest } : c));
}

/** A table's header line. */
export function headerLine(cols: Array<Cell & { label: string }>, width: number): ScreenLine {
  return rowLine(
    cols.map((c) => c.label),
    cols,
    width,
    'header',
  );
}

/** One table row as a screen line. */
export function rowLine(
  cells: string[],
  cols: Cell[],
  width: number,
  style: Style = 'normal',
): ScreenLine {
  return line(row(cells, cols), width, style);
}

export function row(cells: string[], cols: Cell[]): string {
  return ` ${cells.map((s, i) => cell(s, cols[i]!.width, cols[i]!.right)).join(' ')}`;
}

/** A value in a column: cleaned, cut to fit (marked with ~), aligned. */
export function cell(s: string, width: number, right = false): string {
  const clean = printable(s);
  const cut = clean.length > width ? `${clean.slice(0, Math.max(0, width - 1))}~` : clean;
  return right ? cut.padStart(width) : cut.padEnd(width);
}

/** Printable ASCII only: anything else (control, escape, non-ASCII) becomes '?'. */
export function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

export function line(text: string, width: number, style: Style = 'normal'): ScreenLine {
  const clean = printable(text);
  return { text: clean.length > width ? clean.slice(0, width) : clean.padEnd(width), style };
}

export function fill(lines: ScreenLine[], width: number, height: number): ScreenLine[] {
  const out = lines.slice(0, height);
  while (out.length < height) out.push(line('', width));
  return out;
}

/** `left` and `right` on one line of `width`, the right one flush right (dropped if no room). */
export function spread(left: string, right: string, width: number): string {
  const gap = width - left.length - right.length;
  return gap >= 1 ? `${left}${' '.repeat(gap)}${right}` : left;
}

// --- numbers ----------------------------------------------------------------

/** 45s, 12m05s, 3h04m, 2d03h. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function until(at: number, now: number): string {
  return at <= now ? 'expired' : duration(at - now);
}

/** 0, 0.4, 12.3, 4567, 12.3k. */
export function perSecond(rate: number): string {
  if (rate === 0) return '0';
  if (rate < 100) return rate.toFixed(1);
  if (rate < 10_000) return String(Math.round(rate));
  return `${(rate / 1000).toFixed(1)}k`;
}

/** 950us, 1.20ms, 35.0ms, 1.50s. */
export function micros(us: number): string {
  if (us < 1000) return `${Math.round(us)}us`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)}ms`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)}ms`;
  return `${(us / 1_000_000).toFixed(2)}s`;
}

/** 11.7M, 123M, 1.2G. */
export function megabytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  if (mb < 100) return `${mb.toFixed(1)}M`;
  if (mb < 1024) return `${Math.round(mb)}M`;
  return `${(mb / 1024).toFixed(1)}G`;
}

/** did:key:z6MkrmXXXX…YYYYYY as "z6Mkrm9n..ynnce4": enough to tell peers apart. */
export function shortDid(did: string): string {
  const key = did.replace(/^did:key:/, '');
  return key.length <= 16 ? key : `${key.slice(0, 8)}..${key.slice(-6)}`;
}

/** The first 12 hex digits of an entry id (the prompts take a unique prefix). */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** An entry time: the clock time today, else the date and time. */
export function clockTime(ts: number, now: number): string {
  const d = new Date(ts);
  const iso = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  const time = d.toTimeString().slice(0, 8);
  const today = new Date(now).toDateString() === d.toDateString();
  return today ? `${time} (${duration(now - ts)} ago)` : `${iso} ${time}`;
}

export function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** The terminal's size, and the time the frame is drawn for. */
export interface Viewport {
  width: number;
  height: number;
  now: number;
}
