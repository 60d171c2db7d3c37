/**
 * `meshnode console`: the full-screen live view of a running node, over its
 * admin socket (like Erlang's observer_cli). Actors with their mailboxes,
 * rates, latency and heap, sortable by any column; peers, feeds, grants and
 * a live trace of one actor's messages in the lower pane; keys to restart
 * or kill an actor and to approve or revoke by id.
 *
 * Split so that everything but the terminal and the socket is pure and
 * unit tested: console/model.ts (state and what changes it), console/keys.ts
 * (key → state change and effects), console/render.ts (state → lines),
 * console/terminal.ts (alternate screen, raw mode, painting). This file
 * polls the node, carries out the effects and owns the terminal's lifetime.
 *
 * The node is polled at most once a second (a poll still running when the
 * next is due skips that one). If the node goes away the screen says "node
 * not running" and the console keeps reconnecting; q or Ctrl-C leaves, and
 * leaving — by a key, a signal, an SSH hangup or a crash — gives the
 * terminal back as it was.
 */
import { E } from '../runtime/errors.js';
import { AdminClient } from './admin-client.js';
import { handleKey, parseKeys } from './console/keys.js';
import type { Effect } from './console/keys.js';
import { applyActors, applyTail, initialState, say } from './console/model.js';
import type {
  ActorRow,
  ConsoleState,
  DirectoryResult,
  GrantsResult,
  InspectResult,
  MembersResult,
  PeersResult,
  TailRecord,
  TraceRow,
} from './console/model.js';
import { renderScreen, shortId } from './console/render.js';
import { Terminal } from './console/terminal.js';

/** One poll of the node per this interval, at most. */
const REFRESH_MS = 1000;
/** A poll's calls give up after this: a stuck node must not freeze the screen. */
const CALL_TIMEOUT_MS = 3000;
/** Operator actions may take longer (a restart waits for the actor's init). */
const ACTION_TIMEOUT_MS = 60_000;
/** On first contact the console reads this many of the newest arrivals, then follows new ones. */
const TAIL_BACKLOG = 5000;
const TAIL_PAGE = 1000;
/** Pages of the tail read per poll: a big backlog is caught up over a few seconds, not in one stall. */
const TAIL_PAGES_PER_POLL = 5;
/** Rows of nodes and of services the directory pane reads per poll (a screen shows fewer). */
const DIRECTORY_ROWS = 200;
/** A trace is asked for in slices this long, so records appear while it runs and a stop is prompt. */
const TRACE_SLICE_MS = 1000;

/** Exit codes, as the CLI's (commands.ts EXIT). */
const EXIT_OK = 0;
const EXIT_USAGE = 2;
const EXIT_INTERNAL = 5;

export async function runConsole(socketPath: string): Promise<number> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    process.stderr.write('meshnode: ERR_USAGE: the console needs a terminal (stdin and stdout)\n');
    return EXIT_USAGE;
  }
  return new ConsoleApp(socketPath, new Terminal(process.stdin, process.stdout)).run();
}

class ConsoleApp {
  private readonly state: ConsoleState;
  private client: AdminClient | null = null;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** Bumped to abandon a running trace: slices of an older generation are dropped. */
  private traceGen = 0;
  /** The trace slice the node is running, if any: the node runs one trace per actor at a time. */
  private traceSlice: Promise<unknown> | null = null;
  private finish: (code: number) => void = () => {};
  private finished = false;
  private readonly cleanups: Array<() => void> = [];

  constructor(
    socketPath: string,
    private readonly terminal: Terminal,
  ) {
    this.state = initialState(socketPath);
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.listen(process, 'exit', () => this.terminal.leave());
    // A crash restores the terminal before the message, so the message is readable.
    this.listen(process, 'uncaughtException', (err: Error) => this.fatal(err));
    this.listen(process, 'unhandledRejection', (err: unknown) => this.fatal(err));
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      this.listen(process, sig, () => this.quit(EXIT_OK));
    this.listen(process.stdin, 'data', (chunk: string) => this.stdinOnData(chunk));
    this.listen(process.stdout, 'resize', () => {
      this.terminal.invalidate();
      this.draw();
    });
    // The terminal went away under us (SSH dropped): nothing left to draw on.
    this.listen(process.stdout, 'error', () => this.quit(EXIT_OK));
    this.terminal.enter();
    this.draw();
    void this.poll();
    this.timer = setInterval(() => void this.poll(), REFRESH_MS);
    return done;
  }

  private listen(
    emitter: NodeJS.EventEmitter,
    event: string,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- listeners of any event
    fn: (...args: any[]) => void,
  ): void {
    emitter.on(event, fn);
    this.cleanups.push(() => emitter.off(event, fn));
  }

  private quit(code: number): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.traceGen++;
    this.terminal.leave();
    for (const c of this.cleanups.splice(0)) c();
    this.client?.destroy();
    this.client = null;
    this.finish(code);
  }

  private fatal(err: unknown): void {
    this.terminal.leave();
    process.stderr.write(
      `meshnode console: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    this.quit(EXIT_INTERNAL);
  }

  private draw(): void {
    if (this.finished) return;
    this.terminal.paint(renderScreen(this.state, { ...this.terminal.size, now: Date.now() }));
  }

  // --- input ------------------------------------------------------------------

  private stdinOnData(chunk: string): void {
    for (const key of parseKeys(chunk)) {
      for (const effect of handleKey(this.state, key, Date.now())) void this.perform(effect);
      if (this.finished) return;
    }
    this.draw();
  }

  private async perform(effect: Effect): Promise<void> {
    const now = Date.now();
    switch (effect.type) {
      case 'quit':
        return this.quit(EXIT_OK);
      case 'traceStop':
        this.traceGen++;
        if (this.state.trace) this.state.trace.done = true;
        return;
      case 'trace':
        return this.runTrace(effect.actor, effect.count, effect.ms);
      case 'inspect':
        return this.inspectActor(effect.actor);
      case 'restart':
        say(this.state, `restarting ${effect.actor} ...`, now);
        return this.action('restart', { actor: effect.actor }, () => `${effect.actor} restarted`);
      case 'kill':
        say(this.state, `killing ${effect.actor} ...`, now);
        return this.action(
          'kill',
          { actor: effect.actor },
          () => `${effect.actor} killed (its restart policy applies)`,
        );
      case 'approve':
        return this.action('approve', { subscription: effect.subscription }, (r) => {
          this.state.pending = this.state.pending.filter((p) => p.id !== effect.subscription);
          return `approved ${shortId(effect.subscription)}: entry ${this.remember(r)}`;
        });
      case 'revoke':
        return this.action(
          'revoke',
          { target: effect.target },
          (r) => `revoked ${shortId(effect.target)}: entry ${this.remember(r)}`,
        );
    }
  }

  /** One operator action; its outcome goes to the message line. */
  private async action(
    method: string,
    params: Record<string, unknown>,
    done: (result: unknown) => string,
  ): Promise<void> {
    try {
      if (!this.client) throw E.ERR_NOT_RUNNING('node not running');
      const result = await this.client.call(method, params, ACTION_TIMEOUT_MS);
      say(this.state, done(result), Date.now());
    } catch (err) {
      say(this.state, `${method}: ${describe(err)}`, Date.now(), true);
    }
    this.draw();
  }

  /**
   * The id of an entry an action just appended, shortened for the message
   * line. It is known at once (before the tail brings it), so the operator
   * can type the prefix shown, e.g. to revoke the approval just made.
   */
  private remember(result: unknown): string {
    const id = String((result as { id?: unknown } | null)?.id ?? '');
    if (id) this.state.recentIds.push(id);
    return shortId(id);
  }

  /**
   * A live trace: the admin `trace` answers once its count or time is
   * reached, so it is asked for in one-second slices until the operator's
   * count or time is; each slice's records appear as it ends. Between two
   * slices a message can slip by untraced (one round trip on the socket).
   */
  private async runTrace(actor: string, count: number, ms: number): Promise<void> {
    const gen = ++this.traceGen;
    const t = {
      actor,
      count,
      ms,
      startedAt: Date.now(),
      records: [] as TraceRow[],
      done: false,
      error: null as string | null,
    };
    this.state.trace = t;
    this.draw();
    // An abandoned trace's last slice may still run on the node: let it end first.
    await this.traceSlice?.catch(() => {});
    while (gen === this.traceGen) {
      const left = t.startedAt + ms - Date.now();
      const need = count - t.records.length;
      if (left <= 0 || need <= 0) break;
      try {
        if (!this.client) throw E.ERR_NOT_RUNNING('node not running');
        const slice = Math.max(1, Math.min(TRACE_SLICE_MS, Math.ceil(left)));
        this.traceSlice = this.client.call(
          'trace',
          { actor, count: need, ms: slice },
          slice + CALL_TIMEOUT_MS,
        );
        const rows = (await this.traceSlice) as TraceRow[];
        if (gen !== this.traceGen) return;
        t.records.push(...rows.slice(0, need));
      } catch (err) {
        if (gen !== this.traceGen) return;
        t.error = describe(err);
        break;
      }
      this.draw();
    }
    if (gen === this.traceGen) t.done = true;
    this.draw();
  }

  // --- polling ----------------------------------------------------------------

  private async poll(): Promise<void> {
    if (this.polling || this.finished) return;
    this.polling = true;
    try {
      this.client ??= await AdminClient.connect(this.state.socket, { observer: true });
      await this.refresh(this.client);
      this.state.connected = true;
      this.state.everConnected = true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_NOT_RUNNING' || code === 'ERR_ADMIN' || this.client?.closed) {
        this.client?.destroy();
        this.client = null;
        this.state.connected = false;
        this.state.node = null;
        // A trace cannot outlive its connection.
        if (this.state.trace && !this.state.trace.done) {
          this.traceGen++;
          this.state.trace.done = true;
          this.state.trace.error = 'the node went away';
        }
      } else {
        say(this.state, `refresh: ${describe(err)}`, Date.now(), true);
      }
    } finally {
      this.polling = false;
      this.draw();
    }
  }

  /**
   * One poll. `status` and `actors` must answer (they are the supervisor's
   * own); each actor's part (peers, grants, journal) keeps its last value
   * while that actor is down or restarting.
   */
  private async refresh(c: AdminClient): Promise<void> {
    const call = (method: string, params: Record<string, unknown> = {}) =>
      c.call(method, params, CALL_TIMEOUT_MS);
    const [status, actors, peers, grants, heads, journal, nodes, services, members, mesh] =
      await Promise.allSettled([
        call('status'),
        call('actors'),
        call('peers'),
        call('grants'),
        call('journal.heads'),
        call('journal.status'),
        // The first page of each: what a screen can show.
        call('catalog', { what: 'nodes', limit: DIRECTORY_ROWS }),
        call('catalog', { what: 'services', limit: DIRECTORY_ROWS }),
        call('catalog', { what: 'members' }),
        call('membership'),
      ]);
    const now = Date.now();
    if (status.status === 'rejected') throw status.reason;
    if (actors.status === 'rejected') throw actors.reason;
    const s = status.value as { pid: number; uptime: number };
    this.state.node = { pid: s.pid, uptime: s.uptime, at: now };
    applyActors(this.state, actors.value as ActorRow[], now);
    if (peers.status === 'fulfilled' && !(peers.value as { starting?: boolean }).starting)
      this.state.peers = peers.value as PeersResult;
    if (grants.status === 'fulfilled') this.state.grants = grants.value as GrantsResult;
    if (heads.status === 'fulfilled') this.state.heads = heads.value as Record<string, number>;
    if (nodes.status === 'fulfilled' && services.status === 'fulfilled') {
      const n = nodes.value as { rows: DirectoryResult['nodes']; next: string | null };
      const sv = services.value as { rows: DirectoryResult['services']; next: string | null };
      this.state.directory = {
        nodes: n.rows,
        services: sv.rows,
        more: { nodes: n.next !== null, services: sv.next !== null },
      };
    }
    if (members.status === 'fulfilled' && mesh.status === 'fulfilled') {
      const m = mesh.value as {
        mesh: string | null;
        name: string | null;
        admission: string;
        known: boolean;
      };
      this.state.members = {
        mesh: { id: m.mesh, name: m.name, admission: m.admission, known: m.known },
        rows: (members.value as { rows: MembersResult['rows'] }).rows,
      };
    }
    if (journal.status === 'fulfilled') {
      this.state.journal = journal.value as ConsoleState['journal'];
      await this.followTail(c);
    }
    if (this.state.inspect) await this.inspectActor(this.state.inspect.actor);
  }

  /** Fill the inspect view of `actor` (asked on opening it, and on every poll while it is open). */
  private async inspectActor(actor: string): Promise<void> {
    const c = this.client;
    if (!c) return;
    let result: InspectResult | null = null;
    let error: string | null = null;
    try {
      result = (await c.call('inspect', { actor }, CALL_TIMEOUT_MS)) as InspectResult;
    } catch (err) {
      error = describe(err);
    }
    // The operator may have closed it, or moved to another actor, meanwhile.
    const v = this.state.inspect;
    if (v?.actor !== actor) return;
    Object.assign(v, { result, error, at: Date.now() });
    this.draw();
  }

  /** Read the journal's arrivals since the last poll (at first only the newest TAIL_BACKLOG). */
  private async followTail(c: AdminClient): Promise<void> {
    const journal = this.state.journal!;
    if (this.state.tailCursor === null)
      this.state.tailCursor = Math.max(0, journal.entries - TAIL_BACKLOG);
    for (let page = 0; page < TAIL_PAGES_PER_POLL; page++) {
      const records = (await c.call(
        'journal.tail',
        { after: this.state.tailCursor, limit: TAIL_PAGE },
        CALL_TIMEOUT_MS,
      )) as TailRecord[];
      applyTail(this.state, records, journal.did);
      if (records.length < TAIL_PAGE) return;
    }
  }
}

function describe(err: unknown): string {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${code}: ${message}` : message;
}
