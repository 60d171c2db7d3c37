/**
 * A terminal for tests: a tmux session of a given size on a tmux server of
 * its own (`tmux -L NAME`, so a test never touches an operator's sessions),
 * driven with send-keys and read with capture-pane, as a person at an SSH
 * terminal would type and see.
 */
import { execFile, execFileSync } from 'node:child_process';
import { until } from './test.js';

/** Whether tmux is installed (.ci/run installs it); tests that need it skip with a reason otherwise. */
export function tmuxMissing(): string | null {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return null;
  } catch {
    if (process.env.CI === 'true') throw new Error('CI=true but tmux is not installed');
    return 'needs tmux (apt install tmux)';
  }
}

export class Tmux {
  private constructor(private readonly server: string) {}

  /** A detached session running `command` (a shell command line) in a width x height terminal. */
  static async start(command: string, width = 80, height = 24): Promise<Tmux> {
    const t = new Tmux(`meshnode-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    await t.run([
      'new-session',
      '-d',
      '-s',
      'main',
      '-x',
      String(width),
      '-y',
      String(height),
      command,
    ]);
    // The session ends with its command; keep the pane so its last screen can be read.
    await t.run(['set-option', '-t', 'main', 'remain-on-exit', 'on']);
    return t;
  }

  /** Keys as tmux names them: literal text, or 'Enter', 'C-c', 'Up', 'Escape' … */
  async keys(...keys: string[]): Promise<void> {
    await this.run(['send-keys', '-t', 'main', ...keys]);
  }

  /** Text typed as is (no key-name lookup: "Enter" stays five letters). */
  async type(text: string): Promise<void> {
    await this.run(['send-keys', '-t', 'main', '-l', text]);
  }

  /** The visible screen, one string per row. */
  async screen(): Promise<string[]> {
    const out = await this.run(['capture-pane', '-p', '-t', 'main']);
    return out.replace(/\n$/, '').split('\n');
  }

  /** A tmux format value of the pane, e.g. alternate_on, pane_dead, cursor_flag. */
  async paneFormat(name: string): Promise<string> {
    return (await this.run(['display-message', '-p', '-t', 'main', `#{${name}}`])).trim();
  }

  /** Wait until the screen satisfies `check`; the last screen is in the error otherwise. */
  async waitFor(
    check: (screen: string[]) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<string[]> {
    let last: string[] = [];
    try {
      await until(
        async () => {
          last = await this.screen();
          return check(last);
        },
        timeoutMs,
        what,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${last.join('\n')}`);
    }
    return last;
  }

  /** Wait until some row of the screen matches. */
  waitForText(pattern: RegExp | string, timeoutMs?: number): Promise<string[]> {
    const re = typeof pattern === 'string' ? new RegExp(escape(pattern)) : pattern;
    return this.waitFor((s) => s.some((l) => re.test(l)), `the screen to show ${re}`, timeoutMs);
  }

  async kill(): Promise<void> {
    await this.run(['kill-server']).catch(() => {});
  }

  private run(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        'tmux',
        ['-L', this.server, ...args],
        { timeout: 10_000, env: { ...process.env, TERM: process.env.TERM || 'xterm-256color' } },
        (err, stdout, stderr) =>
          err ? reject(new Error(`tmux ${args[0]}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
