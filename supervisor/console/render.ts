/**
 * The console's screen as a pure function of its state: `renderScreen`
 * returns exactly `height` lines of exactly `width` characters, each with a
 * style the terminal layer turns into ANSI. Nothing here writes to the
 * terminal or reads the clock (the caller passes `now`).
 *
 * Only printable ASCII reaches the screen: service names, addresses and
 * error messages can come from other nodes, and an escape sequence inside
 * one must not drive the operator's terminal. ASCII also keeps every
 * character one column wide on any terminal and locale over SSH.
 *
 * Layout (80x24 and up; smaller terminals get a notice):
 *   title bar · node line · actors table · pane tabs · pane (peers, feeds,
 *   grants or trace) · message or prompt line · key help bar; the ? help
 *   and the inspect view take the body instead (screens.ts)
 */
import { lastErrorOf, rateOf, sortedActors } from './model.js';
import { HELP_SCREEN, inspectView } from './screens.js';
import type { ConsoleState, PeerRow, SortKey, TraceState } from './model.js';
import {
  clockTime,
  duration,
  fill,
  fixedWidth,
  headerLine,
  line,
  megabytes,
  micros,
  perSecond,
  rowLine,
  shortDid,
  shortId,
  spread,
  until,
  withRest,
} from './cells.js';
import type { ScreenLine, Viewport } from './cells.js';

export type { ScreenLine, Style } from './cells.js';
// What the console and its tests format with, from where it is defined.
export {
  cell,
  duration,
  megabytes,
  micros,
  perSecond,
  printable,
  shortDid,
  shortId,
} from './cells.js';

export type { Viewport } from './cells.js';

/** The smallest terminal the layout fits. */
export const MIN_WIDTH = 60;
export const MIN_HEIGHT = 16;
/** A message stays on the message line this long. */
const MESSAGE_MS = 15_000;

/** At most 79 characters: the key bar fits 80 columns. */
export const HELP = ' q:quit ?:help jk:select <>:sort r:restart K:kill t:trace a:approve v:revoke';

export function renderScreen(state: ConsoleState, view: Viewport): ScreenLine[] {
  const { width, height } = view;
  if (width < MIN_WIDTH || height < MIN_HEIGHT) {
    const lines = [line(`terminal too small: ${width}x${height}`, width, 'error')];
    lines.push(line(`the console needs ${MIN_WIDTH}x${MIN_HEIGHT}; q quits`, width));
    return fill(lines, width, height);
  }
  const top = [titleBar(state, view), nodeLine(state, view)];
  const bottom = [messageLine(state, view), line(HELP, width, 'bar')];
  const body = height - top.length - bottom.length;
  let middle: ScreenLine[];
  if (state.help) {
    middle = HELP_SCREEN.map((t, i) => line(t, width, i === 0 ? 'header' : 'normal'));
  } else if (!state.connected) {
    middle = notRunning(state, width);
  } else if (state.inspect) {
    middle = inspectView(state, view);
  } else {
    // The actors table gets at most half the body; the pane takes the rest.
    const table = actorsTable(state, view, Math.max(3, Math.floor(body / 2)));
    const pane = paneLines(state, view, body - table.length - 2);
    middle = [...table, line('', width), tabsLine(state, width), ...pane];
  }
  return [...top, ...fill(middle.slice(0, body), width, body), ...bottom];
}

// --- frame ------------------------------------------------------------------

function titleBar(state: ConsoleState, { width, now }: Viewport): ScreenLine {
  const clock = new Date(now).toTimeString().slice(0, 8);
  let left = ' meshnode console';
  if (state.connected && state.node) {
    const up = state.node.uptime * 1000 + (now - state.node.at);
    left += `  pid ${state.node.pid}  up ${duration(up)}`;
    const running = state.actors.filter((a) => a.state === 'running').length;
    left += `  actors ${running}/${state.actors.length}`;
  } else if (!state.connected) {
    left += state.everConnected ? '  NODE NOT RUNNING' : '  connecting';
  }
  return line(spread(left, `${clock} `, width), width, 'bar');
}

function nodeLine(state: ConsoleState, { width }: Viewport): ScreenLine {
  if (!state.connected || !state.journal) return line(` socket ${state.socket}`, width);
  const gossip = state.peers?.listening ? `  gossip :${state.peers.listening}` : '';
  return line(` ${state.journal.did}${gossip}`, width);
}

function notRunning(state: ConsoleState, width: number): ScreenLine[] {
  return [
    line('', width),
    line(state.everConnected ? '  node not running' : '  connecting to the node', width, 'error'),
    line('', width),
    line(`  no answer on ${state.socket}`, width),
    line('  retrying every second; q quits', width),
  ];
}

function messageLine(state: ConsoleState, { width, now }: Viewport): ScreenLine {
  const p = state.prompt;
  if (p) {
    const text = p.kind === 'confirm' ? ` ${p.text}` : ` ${p.text} ${p.value}_`;
    // A long value scrolls: the end of what is typed stays visible.
    const shown = text.length > width ? text.slice(text.length - width) : text;
    return line(shown, width, 'selected');
  }
  const m = state.message;
  if (m && now - m.at < MESSAGE_MS) return line(` ${m.text}`, width, m.error ? 'error' : 'normal');
  return line('', width);
}

function tabsLine(state: ConsoleState, width: number): ScreenLine {
  const names = {
    peers: 'Peers',
    feeds: 'Feeds',
    grants: 'Grants',
    trace: 'Trace',
    directory: 'Directory',
    members: 'Members',
  } as const;
  const tabs = (Object.keys(names) as Array<keyof typeof names>).map((p, i) =>
    p === state.pane ? `[${i + 1} ${names[p]}]` : ` ${i + 1} ${names[p]} `,
  );
  return line(` ${tabs.join(' ')}   (1-6 or tab)`, width);
}

// --- actors -----------------------------------------------------------------

interface Column {
  key: SortKey;
  label: string;
  width: number;
  right: boolean;
}

/** Widths fit 80 columns; LAST ERROR takes what is left (15 at 80). */
const ACTOR_COLUMNS: Column[] = [
  { key: 'name', label: 'ACTOR', width: 10, right: false },
  { key: 'state', label: 'STATE', width: 8, right: false },
  { key: 'uptime', label: 'UPTIME', width: 8, right: true },
  { key: 'restarts', label: 'RST', width: 5, right: true },
  { key: 'mailbox', label: 'MBOX', width: 6, right: true },
  { key: 'rate', label: 'MSG/S', width: 7, right: true },
  { key: 'p99', label: 'P99', width: 7, right: true },
  { key: 'heap', label: 'HEAP', width: 6, right: true },
  { key: 'error', label: 'LAST ERROR', width: 0, right: false },
];

function actorsTable(
  state: ConsoleState,
  { width, now }: Viewport,
  maxLines: number,
): ScreenLine[] {
  const cols = ACTOR_COLUMNS.map((c) => ({
    ...c,
    width: c.width || Math.max(4, width - fixedWidth(ACTOR_COLUMNS)),
  }));
  const header = cols.map((c) =>
    c.key === state.sort.key ? `${c.label} ${state.sort.desc ? 'v' : '^'}` : c.label,
  );
  const out = [rowLine(header, cols, width, 'header')];
  const rows = sortedActors(state, now);
  const visible = maxLines - 1;
  // Scroll so the selected actor is always on screen.
  const sel = Math.max(
    0,
    rows.findIndex((r) => r.name === state.selected),
  );
  const first = Math.min(Math.max(0, sel - visible + 1), Math.max(0, rows.length - visible));
  for (const r of rows.slice(first, first + visible)) {
    const running = r.state === 'running';
    const s = r.stats;
    const rate = rateOf(state, r.name);
    const cells = [
      r.name,
      r.state,
      running && r.startedAt !== null ? duration(now - r.startedAt) : '-',
      String(r.restarts),
      s ? String(s.depth) : '-',
      rate === null ? '-' : perSecond(rate),
      s && s.latency.count > 0 ? micros(s.latency.p99Us) : '-',
      s ? megabytes(s.heapUsed) : '-',
      lastErrorOf(r) || '-',
    ];
    const style = r.name === state.selected ? 'selected' : running ? 'normal' : 'error';
    out.push(rowLine(cells, cols, width, style));
  }
  if (rows.length === 0) out.push(line('  (no actors)', width, 'dim'));
  return out;
}

// --- panes ------------------------------------------------------------------

function paneLines(state: ConsoleState, view: Viewport, lines: number): ScreenLine[] {
  const all = (() => {
    switch (state.pane) {
      case 'peers':
        return peersPane(state, view);
      case 'feeds':
        return feedsPane(state, view);
      case 'grants':
        return grantsPane(state, view);
      case 'trace':
        return tracePane(state, view, lines);
      case 'directory':
        return directoryPane(state, view);
      case 'members':
        return membersPane(state, view);
    }
  })();
  if (all.length <= lines) return all;
  const keep = all.slice(0, Math.max(0, lines - 1));
  keep.push(line(`  ... ${all.length - keep.length} more`, view.width, 'dim'));
  return keep;
}

/** Nodes and services of the mesh, as `meshnode nodes` / `services` list them (the first page). */
function directoryPane(state: ConsoleState, { width }: Viewport): ScreenLine[] {
  const d = state.directory;
  if (!d) return [line('  waiting for the journal', width, 'dim')];
  const nodeCols = withRest(
    [
      { label: 'NODE', width: 16, right: false },
      { label: 'DID', width: 16, right: false },
      { label: 'MESH IP', width: 15, right: false },
      { label: 'VERSION', width: 8, right: false },
      { label: 'ENDPOINT', width: 0, right: false },
    ],
    width,
  );
  const out = [
    line(` ${d.nodes.length}${d.more.nodes ? '+' : ''} nodes`, width),
    headerLine(nodeCols, width),
  ];
  for (const n of d.nodes) {
    out.push(
      rowLine(
        [n.self ? `${n.name} *` : n.name, shortDid(n.did), n.meshIp, n.version ?? '-', n.gossip],
        nodeCols,
        width,
      ),
    );
  }
  const svcCols = withRest(
    [
      { label: 'PROVIDER', width: 16, right: false },
      { label: 'SERVICE', width: 14, right: false },
      { label: 'PORT', width: 10, right: false },
      { label: 'MODE', width: 7, right: false },
      { label: 'MINE', width: 0, right: false },
    ],
    width,
  );
  out.push(line(` ${d.services.length}${d.more.services ? '+' : ''} services`, width));
  out.push(headerLine(svcCols, width));
  for (const s of d.services) {
    out.push(
      rowLine(
        [
          s.providerName ?? shortDid(s.provider),
          s.service,
          `${s.port}/${s.proto}`,
          s.mode,
          s.subscription ? `${s.subscription.state} ${shortId(s.subscription.id)}` : '-',
        ],
        svcCols,
        width,
      ),
    );
  }
  return out;
}

/** Members, their rights and inviters, and the expelled with their cut. */
function membersPane(state: ConsoleState, { width }: Viewport): ScreenLine[] {
  const m = state.members;
  if (!m) return [line('  waiting for the journal', width, 'dim')];
  if (m.mesh.id === null) return [line('  open: no mesh (meshnode mesh found NAME)', width, 'dim')];
  const cols = withRest(
    [
      { label: 'MEMBER', width: 16, right: false },
      { label: 'DID', width: 16, right: false },
      { label: 'INVITED BY', width: 16, right: false },
      { label: 'RIGHTS', width: 0, right: false },
    ],
    width,
  );
  const out = [
    line(
      ` mesh ${m.mesh.name ?? '(not synced yet)'} ${shortId(m.mesh.id)}, ${m.mesh.admission}, ${m.rows.length} rows`,
      width,
    ),
    headerLine(cols, width),
  ];
  for (const r of m.rows) {
    out.push(
      rowLine(
        [
          r.name ?? '-',
          shortDid(r.did),
          r.expelled
            ? `expelled by ${shortDid(r.expelled.by)}`
            : r.invitedBy
              ? shortDid(r.invitedBy)
              : 'founder',
          r.expelled ? `cut at ${r.expelled.cut}` : r.rights.join(','),
        ],
        cols,
        width,
        r.expelled ? 'error' : 'normal',
      ),
    );
  }
  return out;
}

const PEER_COLUMNS = [
  { label: 'PEER', width: 16, right: false },
  { label: 'ADDRESS', width: 21, right: false },
  { label: 'STATE', width: 9, right: false },
  { label: 'DIR', width: 3, right: false },
  { label: 'LAG', width: 6, right: true },
  { label: 'SCORE', width: 5, right: true },
  { label: 'BAN', width: 0, right: false },
];

function peersPane(state: ConsoleState, { width, now }: Viewport): ScreenLine[] {
  const p = state.peers;
  if (!p) return [line('  waiting for the gossip actor', width, 'dim')];
  const cols = withRest(PEER_COLUMNS, width);
  const open = p.peers.filter((x) => x.state === 'open').length;
  const bans = p.bans.filter((b) => b.until > now);
  const out = [
    line(
      ` ${open} open, ${p.peers.length - open} other, ${p.dialing.length} dialing, ${bans.length} banned, ${p.frozen.length} frozen feeds`,
      width,
    ),
    headerLine(cols, width),
  ];
  const banOf = (did: string | null) => bans.find((b) => b.did === did);
  for (const peer of p.peers) {
    const ban = banOf(peer.did);
    out.push(
      rowLine(
        [
          peer.did ? shortDid(peer.did) : '(handshake)',
          peer.address,
          peer.state,
          peer.direction === 'inbound' || peer.direction === 'in' ? 'in' : 'out',
          lagOf(peer),
          String(peer.score),
          ban ? `${duration(ban.until - now)} left` : '-',
        ],
        cols,
        width,
      ),
    );
  }
  // Banned DIDs hold no connection: they are rows of their own.
  for (const ban of bans.filter((b) => !p.peers.some((x) => x.did === b.did))) {
    out.push(
      rowLine(
        [shortDid(ban.did), '-', 'banned', '-', '-', '-', `${duration(ban.until - now)} left`],
        cols,
        width,
        'dim',
      ),
    );
  }
  for (const d of p.dialing) {
    out.push(line(`  dialing ${d.url} (attempt ${d.attempt})`, width, 'dim'));
  }
  if (p.peers.length === 0 && bans.length === 0 && p.dialing.length === 0)
    out.push(line('  (no peers)', width, 'dim'));
  return out;
}

/** Net lag over all feeds: positive, the peer holds entries we lack; negative, the reverse. */
function lagOf(peer: PeerRow): string {
  const total = Object.values(peer.lag ?? {}).reduce((a, b) => a + b, 0);
  return total > 0 ? `+${total}` : String(total);
}

function feedsPane(state: ConsoleState, { width, now }: Viewport): ScreenLine[] {
  const me = state.journal?.did ?? '';
  const authors = Object.keys(state.heads).sort((a, b) =>
    a === me ? -1 : b === me ? 1 : (state.lastTs[b] ?? 0) - (state.lastTs[a] ?? 0),
  );
  // At 80 columns a whole did:key (without its "did:key:") fits: 48 characters and the marker.
  const cols = withRest(
    [
      { label: 'AUTHOR (* this node)', width: 0, right: false },
      { label: 'HEAD', width: 8, right: true },
      { label: 'LAST ENTRY', width: 20, right: false },
    ],
    width,
  );
  const out = [
    line(` ${authors.length} feeds, ${state.journal?.entries ?? 0} entries`, width),
    headerLine(cols, width),
  ];
  for (const a of authors) {
    const ts = state.lastTs[a];
    const name = `${a === me ? '*' : ' '}${a.replace(/^did:key:/, '')}`;
    out.push(
      rowLine(
        [name, String(state.heads[a]), ts ? `${clockTime(ts, now)}` : '(not read yet)'],
        cols,
        width,
      ),
    );
  }
  if (authors.length === 0) out.push(line('  (no feeds)', width, 'dim'));
  return out;
}

function grantsPane(state: ConsoleState, { width, now }: Viewport): ScreenLine[] {
  const g = state.grants;
  if (!g) return [line('  waiting for the grants actor', width, 'dim')];
  const out: ScreenLine[] = [];
  // Rows in grantPicks order: the picked one is highlighted.
  let k = 0;
  const style = () => (state.pick === k++ ? 'selected' : 'normal');
  const liveCols = withRest(
    [
      { label: 'SUBSCRIBER', width: 16, right: false },
      { label: 'SERVICE', width: 12, right: false },
      { label: 'IP', width: 0, right: false },
      { label: 'EXPIRES', width: 8, right: true },
      { label: 'GRANT', width: 12, right: false },
    ],
    width,
  );
  out.push(line(` granted by this node: ${g.live.length}`, width));
  if (g.live.length > 0) {
    out.push(headerLine(liveCols, width));
    for (const x of g.live)
      out.push(
        rowLine(
          [
            shortDid(x.subscriber),
            x.service,
            `${x.ip} ${x.proto}/${x.port}`,
            until(x.expires, now),
            shortId(x.grant),
          ],
          liveCols,
          width,
          style(),
        ),
      );
  }
  out.push(line(` activated by this node: ${g.activations.length}`, width));
  if (g.activations.length > 0) {
    const cols = withRest(
      [
        { label: 'PROVIDER', width: 16, right: false },
        { label: 'SERVICE', width: 12, right: false },
        { label: 'ENDPOINT', width: 0, right: false },
        { label: 'EXPIRES', width: 8, right: true },
        { label: 'STATE', width: 8, right: false },
        { label: 'SUBSCRIPTION', width: 12, right: false },
      ],
      width,
    );
    out.push(headerLine(cols, width));
    for (const a of g.activations) {
      const ep = a.endpoint;
      out.push(
        rowLine(
          [
            shortDid(a.provider),
            a.service,
            `${ep.ip}:${ep.port}/${ep.proto}`,
            until(a.expires, now),
            a.state ?? 'active',
            shortId(a.subscription),
          ],
          cols,
          width,
          style(),
        ),
      );
    }
  }
  out.push(
    line(` waiting for approval: ${state.pending.length}  ([ ] pick, a approve, v revoke)`, width),
  );
  if (state.pending.length > 0) {
    const cols = withRest(
      [
        { label: 'SUBSCRIPTION', width: 12, right: false },
        { label: 'SUBSCRIBER', width: 16, right: false },
        { label: 'SERVICE', width: 12, right: false },
        { label: 'ASKED', width: 0, right: false },
      ],
      width,
    );
    out.push(headerLine(cols, width));
    for (const p of state.pending)
      out.push(
        rowLine(
          [shortId(p.id), shortDid(p.subscriber), p.service, `${duration(now - p.ts)} ago`],
          cols,
          width,
          style(),
        ),
      );
  }
  return out;
}

function tracePane(state: ConsoleState, { width, now }: Viewport, lines: number): ScreenLine[] {
  const t = state.trace;
  if (!t) return [line('  no trace: select an actor (j/k) and press t', width, 'dim')];
  const cols = withRest(
    [
      { label: 'TIME', width: 12, right: false },
      { label: 'FROM', width: 10, right: false },
      { label: 'KIND', width: 4, right: false },
      { label: 'ACTION', width: 20, right: false },
      { label: 'TOOK', width: 8, right: true },
      { label: 'OUTCOME', width: 0, right: false },
    ],
    width,
  );
  const out = [
    line(` ${traceSummary(t, now)}`, width, t.error ? 'error' : 'normal'),
    headerLine(cols, width),
  ];
  // The newest records are the ones that fit: a live trace scrolls like a log.
  const room = Math.max(0, lines - out.length);
  for (const r of t.records.slice(-room)) {
    out.push(
      rowLine(
        [
          new Date(r.at).toTimeString().slice(0, 8) + `.${String(r.at % 1000).padStart(3, '0')}`,
          r.from,
          r.kind,
          r.action,
          micros(r.us),
          r.outcome,
        ],
        cols,
        width,
        r.outcome === 'ok' ? 'normal' : 'error',
      ),
    );
  }
  return out;
}

export function traceSummary(t: TraceState, now: number): string {
  const n = `${t.records.length} of ${t.count} messages`;
  if (t.error) return `trace ${t.actor}: ${n}; stopped: ${t.error}`;
  if (t.done) return `trace ${t.actor}: done, ${n}`;
  const left = Math.max(0, t.startedAt + t.ms - now);
  return `trace ${t.actor}: ${n}, ${(left / 1000).toFixed(0)} s left (x stops)`;
}

// --- cells ------------------------------------------------------------------
