/**
 * The terminal under the console: the alternate screen buffer (the shell's
 * screen comes back untouched on leave), raw mode (keys arrive one by one,
 * Ctrl-C as a byte rather than a signal), a hidden cursor, and painting
 * that rewrites only the lines that changed since the last frame — over
 * SSH a full 80x24 redraw every second is what makes a console flicker.
 *
 * Plain ANSI (ECMA-48 and the xterm private modes every terminal emulator
 * and tmux know); no terminfo lookups, no dependency.
 */
import type { ScreenLine, Style } from './render.js';

const ESC = '\x1b[';
const ENTER = `${ESC}?1049h${ESC}?25l${ESC}2J${ESC}H`;
const LEAVE = `${ESC}0m${ESC}?25h${ESC}?1049l`;

/** SGR for each style; NO_COLOR (no-color.org) keeps only reverse, bold and dim. */
function sgr(style: Style, color: boolean): string {
  switch (style) {
    case 'bar':
    case 'header':
    case 'selected':
      return `${ESC}7m`;
    case 'error':
      return color ? `${ESC}1;31m` : `${ESC}1m`;
    case 'dim':
      return `${ESC}2m`;
    case 'normal':
      return '';
  }
}

export class Terminal {
  private previous: string[] = [];
  private active = false;
  private readonly color: boolean;

  constructor(
    private readonly input: NodeJS.ReadStream,
    private readonly output: NodeJS.WriteStream,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.color = !env.NO_COLOR;
  }

  get size(): { width: number; height: number } {
    return { width: this.output.columns || 80, height: this.output.rows || 24 };
  }

  enter(): void {
    if (this.active) return;
    this.input.setRawMode(true);
    this.input.setEncoding('utf8');
    this.input.resume();
    this.write(ENTER);
    this.active = true;
    this.previous = [];
  }

  /**
   * Give the terminal back as it was. Synchronous and safe to call twice, so
   * it can run from an 'exit' handler or after an error: a console that dies
   * must not leave the operator's shell in raw mode on the alternate screen.
   */
  leave(): void {
    if (!this.active) return;
    this.active = false;
    try {
      this.write(LEAVE);
    } catch {
      // The terminal is gone (SSH dropped): nothing to restore on it.
    }
    try {
      this.input.setRawMode(false);
    } catch {
      // Likewise.
    }
    this.input.pause();
  }

  /** Forget the last frame: the next paint redraws every line (after a resize). */
  invalidate(): void {
    this.previous = [];
    if (this.active) this.write(`${ESC}2J`);
  }

  paint(lines: ScreenLine[]): void {
    if (!this.active) return;
    let out = '';
    lines.forEach((l, i) => {
      const key = `${l.style}\0${l.text}`;
      if (this.previous[i] === key) return;
      this.previous[i] = key;
      const style = sgr(l.style, this.color);
      out += `${ESC}${i + 1};1H${style}${l.text}${style ? `${ESC}0m` : ''}`;
    });
    this.previous.length = lines.length;
    if (out) this.write(out);
  }

  /**
   * Node writes to a TTY synchronously (on the terminal's own reopened
   * descriptor, so a non-blocking stdin cannot make it fail with EAGAIN):
   * a frame is never half written when the process exits.
   */
  private write(s: string): void {
    this.output.write(s);
  }
}
