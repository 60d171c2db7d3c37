/**
 * The console without a terminal or a node: its state functions (rates,
 * sorting, the tail it follows, id prefixes), its keys, and the screen as a
 * pure function of the state.
 */
import * as assert from 'uvu/assert';
import { handleKey, parseKeys } from '../../../supervisor/console/keys.js';
import {
  applyActors,
  applyTail,
  initialState,
  parseTraceInput,
  rateOf,
  resolveId,
  sortedActors,
  stepSort,
} from '../../../supervisor/console/model.js';
import type {
  ActorRow,
  ConsoleState,
  InspectResult,
  TailRecord,
} from '../../../supervisor/console/model.js';
import {
  cell,
  duration,
  HELP,
  megabytes,
  micros,
  perSecond,
  printable,
  renderScreen,
  shortDid,
} from '../../../supervisor/console/render.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/console-render');

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const ME = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const PEER = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH';
const hex = (c: string) => c.repeat(64);

function actor(
  name: string,
  over: Partial<ActorRow> = {},
  stats: Partial<NonNullable<ActorRow['stats']>> = {},
): ActorRow {
  return {
    name,
    state: 'running',
    restarts: 0,
    startedAt: T0 - 60_000,
    lastExit: null,
    stats: {
      handled: 0,
      depth: 0,
      heapUsed: 10 * 1024 * 1024,
      latency: { count: 0, p99Us: 0 },
      ...stats,
    },
    ...over,
  };
}

function connected(): ConsoleState {
  const s = initialState('/run/meshnode/admin.sock');
  s.connected = true;
  s.everConnected = true;
  s.node = { pid: 4242, uptime: 3725, at: T0 };
  s.journal = { did: ME, entries: 3, feeds: 2 };
  return s;
}

/** A live grant of `service` to PEER, from 10.1.2.3, for an hour from T0. */
const liveGrant = (service: string) => ({
  grant: hex('e'),
  subscription: hex('a'),
  subscriber: PEER,
  service,
  ip: '10.1.2.3',
  port: 8080,
  proto: 'tcp' as const,
  expires: T0 + 3_600_000,
});

const screen = (s: ConsoleState, width = 80, height = 24, now = T0) =>
  renderScreen(s, { width, height, now });
const text = (s: ConsoleState, width = 80, height = 24, now = T0) =>
  screen(s, width, height, now).map((l) => l.text);
const find = (lines: string[], needle: string) => lines.find((l) => l.includes(needle));

test('every frame is exactly height lines of exactly width columns, at 80x24 and wider', () => {
  const s = connected();
  applyActors(s, [actor('journal'), actor('gossip')], T0);
  for (const pane of ['peers', 'feeds', 'grants', 'trace'] as const) {
    s.pane = pane;
    for (const [w, h] of [
      [80, 24],
      [132, 50],
      [60, 16],
    ] as const) {
      const lines = screen(s, w, h);
      assert.is(lines.length, h, `${pane} ${w}x${h}: line count`);
      for (const l of lines) assert.is(l.text.length, w, `${pane} ${w}x${h}: "${l.text}"`);
    }
  }
});

test('the key bar fits 80 columns whole', () => {
  assert.ok(HELP.length < 80, `${HELP.length} columns`);
  const lines = text(connected());
  assert.is(lines[23]!.trimEnd(), HELP.trimEnd());
});

test('a terminal smaller than the layout gets a notice, not a broken screen', () => {
  const lines = text(connected(), 40, 10);
  assert.is(lines.length, 10);
  assert.match(lines[0]!, /terminal too small: 40x10/);
});

test('actors table: name, state, uptime, restarts, mailbox, msgs/s, p99, heap, last error', () => {
  const s = connected();
  applyActors(
    s,
    [
      actor('journal', {}, { handled: 100, depth: 7, latency: { count: 5, p99Us: 1234 } }),
      actor(
        'gossip',
        {
          state: 'dead',
          restarts: 3,
          lastExit: { code: 1, reason: 'boom', abnormal: true, at: T0 },
        },
        {},
      ),
    ],
    T0 - 10_000,
  );
  applyActors(
    s,
    [
      actor('journal', {}, { handled: 600, depth: 7, latency: { count: 5, p99Us: 1234 } }),
      {
        ...actor('gossip', { state: 'dead', restarts: 3 }),
        startedAt: null,
        stats: null,
        lastExit: { code: 1, reason: 'boom', abnormal: true, at: T0 },
      },
    ],
    T0,
  );
  const lines = text(s);
  const header = find(lines, 'ACTOR')!;
  for (const h of ['STATE', 'UPTIME', 'RST', 'MBOX', 'MSG/S', 'P99', 'HEAP', 'LAST ERROR'])
    assert.ok(header.includes(h), `header has ${h}: ${header}`);
  const j = find(lines, ' journal ')!.split(/\s+/).filter(Boolean);
  assert.equal(j, ['journal', 'running', '1m00s', '0', '7', '50.0', '1.23ms', '10.0M', '-']);
  const g = find(lines, ' gossip ')!;
  assert.match(g, /gossip\s+dead\s+-\s+3\s+-\s+-\s+-\s+-\s+exit: boom/);
});

test('msgs/s is the handled count over the sliding window; a new instance starts afresh', () => {
  const s = connected();
  applyActors(s, [actor('a', {}, { handled: 0 })], T0);
  assert.is(rateOf(s, 'a'), null, 'one sample is no rate');
  for (let i = 1; i <= 30; i++)
    applyActors(s, [actor('a', {}, { handled: i * 10 })], T0 + i * 1000);
  assert.is(rateOf(s, 'a'), 10);
  const w = s.windows.a!.samples;
  assert.ok(w[w.length - 1]![0] - w[0]![0] <= 10_000, 'samples span at most the window');
  // The rate follows a change within the window.
  for (let i = 31; i <= 41; i++) applyActors(s, [actor('a', {}, { handled: 300 })], T0 + i * 1000);
  assert.is(rateOf(s, 'a'), 0);
  // Restarted: new startedAt, counters from zero; no negative rate from the old samples.
  applyActors(s, [actor('a', { startedAt: T0 + 42_000 }, { handled: 1 })], T0 + 42_000);
  assert.is(rateOf(s, 'a'), null);
});

test('sorting by each column: numbers biggest first, text A to Z, i inverts, ties in start order', () => {
  const s = connected();
  applyActors(
    s,
    [
      actor('journal', { restarts: 1 }, { depth: 5, heapUsed: 3 }),
      actor('nft', { restarts: 0 }, { depth: 50, heapUsed: 1 }),
      actor('grants', { restarts: 2 }, { depth: 0, heapUsed: 2 }),
    ],
    T0,
  );
  const order = () => sortedActors(s, T0).map((a) => a.name);
  assert.equal(order(), ['journal', 'nft', 'grants'], 'no sort column: start order');
  handleKey(s, '>', T0);
  assert.equal(s.sort, { key: 'name', desc: false });
  assert.equal(order(), ['grants', 'journal', 'nft']);
  handleKey(s, 'i', T0);
  assert.equal(order(), ['nft', 'journal', 'grants']);
  for (const k of ['>', '>', '>']) handleKey(s, k, T0);
  assert.equal(s.sort, { key: 'restarts', desc: true });
  assert.equal(order(), ['grants', 'journal', 'nft']);
  handleKey(s, 'right', T0);
  assert.equal(s.sort.key, 'mailbox');
  assert.equal(order(), ['nft', 'journal', 'grants']);
  stepSort(s, 1);
  stepSort(s, 1);
  stepSort(s, 1);
  assert.equal(s.sort.key, 'heap');
  assert.equal(order(), ['journal', 'grants', 'nft']);
  // The header marks the column and its direction.
  assert.match(find(text(s), 'ACTOR')!, /HEAP v/);
  handleKey(s, 'i', T0);
  assert.match(find(text(s), 'ACTOR')!, /HEAP \^/);
  // Past the last column: back to start order.
  stepSort(s, 1);
  stepSort(s, 1);
  assert.is(s.sort.key, null);
  assert.equal(order(), ['journal', 'nft', 'grants']);
});

test('selection follows the table as shown; r and K ask to confirm; only y does it', () => {
  const s = connected();
  applyActors(s, [actor('journal'), actor('nft'), actor('grants')], T0);
  assert.is(s.selected, 'journal');
  handleKey(s, 'j', T0);
  handleKey(s, 'down', T0);
  handleKey(s, 'down', T0);
  assert.is(s.selected, 'grants', 'stops at the last row');
  handleKey(s, 'k', T0);
  assert.is(s.selected, 'nft');
  assert.equal(handleKey(s, 'r', T0), []);
  assert.match(text(s)[22]!, /restart nft\? \(y\/N\)/);
  assert.equal(handleKey(s, 'n', T0), []);
  assert.is(s.prompt, null);
  handleKey(s, 'K', T0);
  assert.equal(handleKey(s, 'y', T0), [{ type: 'kill', actor: 'nft' }]);
  handleKey(s, 'r', T0);
  assert.equal(handleKey(s, 'y', T0), [{ type: 'restart', actor: 'nft' }]);
});

test('approve and revoke prompt for an id; a unique prefix of a known id is enough; a typed revoke asks y/N', () => {
  const s = connected();
  applyTail(
    s,
    [
      tail(1, hex('a'), PEER, 'subscribe', { provider: ME, service: 'web' }),
      tail(2, `ab${hex('c').slice(2)}`, ME, 'offer', { service: 'web' }),
    ],
    ME,
  );
  handleKey(s, 'a', T0);
  for (const k of parseKeys('aaaa')) handleKey(s, k, T0);
  assert.match(text(s)[22]!, /approve subscription id: aaaa_/);
  assert.equal(handleKey(s, 'enter', T0), [{ type: 'approve', subscription: hex('a') }]);
  // Ambiguous prefix: an error on the message line, no effect.
  handleKey(s, 'v', T0);
  for (const k of parseKeys('a')) handleKey(s, k, T0);
  assert.equal(handleKey(s, 'enter', T0), []);
  assert.match(s.message!.text, /at least 4/);
  handleKey(s, 'v', T0);
  for (const k of parseKeys(`ab${'c'.repeat(10)}x`)) handleKey(s, k, T0);
  handleKey(s, 'backspace', T0);
  assert.equal(handleKey(s, 'enter', T0), [], 'a revoke is confirmed first');
  assert.match(text(s)[22]!, /revoke abcccccccccc\? \(y\/N\)/);
  assert.equal(handleKey(s, 'y', T0), [{ type: 'revoke', target: `ab${hex('c').slice(2)}` }]);
  // A full id is taken as typed; n at the question cancels it; escape cancels a prompt.
  handleKey(s, 'v', T0);
  for (const k of parseKeys(hex('d'))) handleKey(s, k, T0);
  handleKey(s, 'enter', T0);
  assert.equal(handleKey(s, 'n', T0), []);
  assert.match(s.message!.text, /revoke cancelled/);
  handleKey(s, 'v', T0);
  for (const k of parseKeys(hex('d'))) handleKey(s, k, T0);
  handleKey(s, 'enter', T0);
  assert.equal(handleKey(s, 'Y', T0), [{ type: 'revoke', target: hex('d') }]);
  handleKey(s, 'a', T0);
  assert.equal(handleKey(s, 'escape', T0), []);
  assert.is(s.prompt, null);
  assert.equal(resolveId(s, 'ffff'), {
    error: 'no entry id the console has seen starts with ffff',
  });
});

test('q and Ctrl-C quit, Ctrl-C even from a prompt', () => {
  const s = connected();
  assert.equal(handleKey(s, 'q', T0), [{ type: 'quit' }]);
  handleKey(s, 'a', T0);
  assert.equal(handleKey(s, 'q', T0), [], 'q is a letter at a prompt');
  assert.equal(handleKey(s, 'ctrl-c', T0), [{ type: 'quit' }]);
});

test('raw input splits into keys: arrows in both modes, paste, unknown sequences dropped', () => {
  assert.equal(parseKeys('\x1b[A\x1b[B\x1bOC\x1b[D'), ['up', 'down', 'right', 'left']);
  assert.equal(parseKeys('ab\r'), ['a', 'b', 'enter']);
  assert.equal(parseKeys('\x03'), ['ctrl-c']);
  assert.equal(parseKeys('\x1b'), ['escape']);
  assert.equal(parseKeys('\x1b[15~x'), ['x'], 'F5 is dropped whole');
  assert.equal(parseKeys('\x7f\t'), ['backspace', 'tab']);
});

test('trace: the prompt takes count and seconds (defaults when empty) and shows the trace pane', () => {
  const s = connected();
  applyActors(s, [actor('journal')], T0);
  handleKey(s, 't', T0);
  assert.match(text(s)[22]!, /trace journal: count and seconds \[100 10\]:/);
  assert.equal(handleKey(s, 'enter', T0), [
    { type: 'trace', actor: 'journal', count: 100, ms: 10_000 },
  ]);
  assert.is(s.pane, 'trace');
  handleKey(s, 't', T0);
  for (const k of parseKeys('5 2.5')) handleKey(s, k, T0);
  assert.equal(handleKey(s, 'enter', T0), [
    { type: 'trace', actor: 'journal', count: 5, ms: 2500 },
  ]);
  assert.ok('error' in parseTraceInput('0', { count: 1, ms: 1 }));
  assert.ok('error' in parseTraceInput('1 1000', { count: 1, ms: 1 }));
  s.trace = {
    actor: 'journal',
    count: 5,
    ms: 10_000,
    startedAt: T0 - 4000,
    done: false,
    error: null,
    records: [
      { at: T0 - 3000, from: 'gossip', action: 'ingest', kind: 'ask', us: 1500, outcome: 'ok' },
      {
        at: T0 - 2000,
        from: 'admin',
        action: 'append',
        kind: 'ask',
        us: 80,
        outcome: 'ERR_SCHEMA',
      },
    ],
  };
  const lines = text(s);
  assert.ok(find(lines, 'trace journal: 2 of 5 messages, 6 s left'));
  assert.match(find(lines, 'ingest')!, /gossip\s+ask\s+ingest\s+1\.50ms\s+ok/);
  assert.match(find(lines, 'append')!, /admin\s+ask\s+append\s+80us\s+ERR_SCHEMA/);
  assert.is(screen(s).find((l) => l.text.includes('append'))!.style, 'error');
});

test('peers pane: DID, address, state, lag, score and ban; banned DIDs without a link listed too', () => {
  const s = connected();
  s.peers = {
    did: ME,
    listening: 7946,
    peers: [
      {
        did: PEER,
        address: '127.0.0.1:40000',
        direction: 'outbound',
        state: 'open',
        score: 85,
        lag: { [PEER]: 3, [ME]: -1 },
      },
    ],
    dialing: [{ url: 'ws://10.0.0.9:7946/gossip', did: null, attempt: 2 }],
    bans: [{ did: ME.replace('z6Mkha', 'z6Mkzz'), until: T0 + 90_000, count: 1, reason: 'score' }],
    frozen: [],
  };
  const lines = text(s);
  assert.ok(find(lines, '1 open, 0 other, 1 dialing, 1 banned'));
  assert.match(find(lines, shortDid(PEER))!, /127\.0\.0\.1:40000\s+open\s+out\s+\+2\s+85\s+-/);
  assert.match(find(lines, 'banned  ')!, /1m30s left/);
  assert.ok(find(lines, 'dialing ws://10.0.0.9:7946/gossip (attempt 2)'));
  assert.ok(lines[1]!.includes(`${ME}  gossip :7946`), 'the node line shows our DID whole');
});

test('feeds pane: author, head and the newest entry time read from the tail', () => {
  const s = connected();
  s.pane = 'feeds';
  s.heads = { [ME]: 2, [PEER]: 7 };
  applyTail(s, [tail(1, hex('1'), PEER, 'node', {}, T0 - 5000)], ME);
  const lines = text(s);
  assert.ok(find(lines, '2 feeds, 3 entries'));
  const mine = find(lines, `*${ME.slice(8)}`)!;
  assert.match(mine, /\s2\s+\(not read yet\)/);
  const theirs = find(lines, ` ${PEER.slice(8)}`)!;
  assert.match(theirs, /\s7\s+\d\d:\d\d:\d\d \(5s ago\)/);
  assert.is(s.tailCursor, 1);
});

test('grants pane: live grants, activations, and subscriptions waiting for approval until approved', () => {
  const s = connected();
  s.pane = 'grants';
  s.grants = {
    live: [liveGrant('web')],
    activations: [
      {
        subscription: hex('b'),
        provider: PEER,
        service: 'db',
        endpoint: { ip: '10.9.9.9', port: 5432, proto: 'tcp' },
        expires: T0 - 1,
        grant: hex('f'),
        state: 'revoked',
      },
    ],
  };
  applyTail(
    s,
    [
      tail(1, hex('1'), PEER, 'subscribe', { provider: ME, service: 'web' }, T0 - 65_000),
      tail(2, hex('2'), PEER, 'subscribe', { provider: PEER, service: 'not ours' }),
      tail(3, hex('3'), PEER, 'subscribe', { provider: ME, service: 'ssh' }, T0 - 1000),
    ],
    ME,
  );
  let lines = text(s);
  assert.match(find(lines, 'eeeeeeeeeeee')!, /web\s+10\.1\.2\.3 tcp\/8080\s+1h00m\s+eeeeeeeeeeee/);
  assert.match(
    find(lines, 'bbbbbbbbbbbb')!,
    /db\s+10\.9\.9\.9:5432\/tcp\s+expired\s+revoked\s+bbbbbbbbbbbb/,
  );
  assert.ok(find(lines, 'waiting for approval: 2'));
  assert.match(find(lines, '111111111111')!, /web\s+1m05s ago/);
  applyTail(s, [tail(4, hex('4'), ME, 'approve', { subscription: hex('1') })], ME);
  lines = text(s);
  assert.ok(find(lines, 'waiting for approval: 1'));
  assert.not.ok(find(lines, '111111111111'));
  applyTail(s, [tail(5, hex('5'), PEER, 'revoke', { target: hex('3') })], ME);
  assert.equal(s.pending, []);
});

test('grants pane: [ and ] pick a row; a approves the picked subscription, v revokes the picked grant, each after y', () => {
  const s = connected();
  s.pane = 'grants';
  s.grants = {
    // A hostile name: a script tag, an RTL override, 10 KB.
    live: [liveGrant(`<script>\u202e${'x'.repeat(10_000)}`)],
    activations: [],
  };
  applyTail(s, [tail(1, hex('1'), PEER, 'subscribe', { provider: ME, service: 'ssh' })], ME);
  assert.equal(handleKey(s, ']', T0), []);
  assert.is(s.pick, 0);
  let shown = screen(s);
  const picked = shown.filter((l) => l.style === 'selected');
  assert.is(picked.length, 1, 'one row highlighted');
  assert.ok(picked[0]!.text.includes('eeeeeeeeeeee'), 'the live grant');
  // a on a grant is not an approval; v asks first, naming it (cut, printable).
  assert.equal(handleKey(s, 'a', T0), []);
  assert.match(s.message!.text, /only a subscription waiting for approval/);
  assert.equal(handleKey(s, 'v', T0), []);
  const question = text(s)[22]!;
  assert.match(question, /revoke grant of <script>.x+~ to .*\? \(y\/N\)/);
  assert.ok(question.length === 80 && !/[\u202e]/.test(question), 'printable, one line');
  assert.equal(handleKey(s, 'y', T0), [{ type: 'revoke', target: hex('e') }]);
  // ] to the waiting subscription; a, then y, approves it.
  handleKey(s, ']', T0);
  shown = screen(s);
  assert.ok(shown.find((l) => l.style === 'selected')!.text.includes('111111111111'));
  handleKey(s, 'a', T0);
  assert.match(text(s)[22]!, /approve .*'s subscription to ssh\? \(y\/N\)/);
  assert.equal(handleKey(s, 'y', T0), [{ type: 'approve', subscription: hex('1') }]);
  // ] stops at the last row; [ past the first un-picks, and a prompts for an id again.
  handleKey(s, ']', T0);
  assert.is(s.pick, 1);
  handleKey(s, '[', T0);
  handleKey(s, '[', T0);
  assert.is(s.pick, null);
  handleKey(s, 'a', T0);
  assert.match(text(s)[22]!, /approve subscription id: _/);
});

test('? opens the help screen over everything; any key closes it and does nothing else', () => {
  const s = connected();
  applyActors(s, [actor('journal'), actor('nft')], T0);
  assert.equal(handleKey(s, '?', T0), []);
  const lines = text(s);
  assert.match(lines[2]!, /keys of the console/);
  for (const k of ['Enter', '[ ]', 'a ', 'v ', 'r  K', 't  x', '1-6'])
    assert.ok(
      lines.some((l) => l.startsWith(`  ${k}`)),
      `help names ${k}`,
    );
  assert.match(lines[23]!, /\?:help/);
  // r would ask to restart; here it only closes the help.
  assert.equal(handleKey(s, 'r', T0), []);
  assert.is(s.help, false);
  assert.is(s.prompt, null);
});

test('Enter inspects the selected actor: supervision, mailbox, messages, recent errors in full, state; Esc closes', () => {
  const s = connected();
  applyActors(s, [actor('journal'), actor('grants')], T0);
  s.selected = 'grants';
  assert.equal(handleKey(s, 'enter', T0), [{ type: 'inspect', actor: 'grants' }]);
  assert.match(find(text(s), 'inspect grants')!, /Esc closes/);
  assert.ok(find(text(s), 'asking the node'));
  const long = `refused: ${'y'.repeat(150)} END`;
  s.inspect!.result = {
    supervision: {
      name: 'grants',
      restart: 'permanent',
      state: 'running',
      restarts: 2,
      startedAt: T0 - 5000,
      threadId: 7,
      lastExit: { code: 1, reason: 'crashed', abnormal: true },
    },
    stats: {
      received: 120,
      handled: 100,
      observed: 30,
      rejected: 3,
      deadLetters: 0,
      depth: 4,
      running: 1,
      highWater: 1000,
      heapUsed: 12 * 1024 * 1024,
      latency: { count: 100, p50Us: 80, p99Us: 900, maxUs: 2000 },
      recentErrors: [
        { at: T0 - 1000, action: 'authorize', code: 'ERR_GRANT_REVOKED', message: long },
      ],
    },
    links: [],
    state: { live: 3, nonces: 1 },
    // The fields the view shows; the rest of the answer is not read.
  } as unknown as InspectResult;
  const lines = text(s, 80, 40);
  assert.match(find(lines, '  actor ')!, /permanent, running, thread 7/);
  assert.match(find(lines, '  restarts ')!, /2/);
  assert.match(find(lines, '  mailbox ')!, /4 waiting, 1 running \(high water 1000\)/);
  assert.match(
    find(lines, '  messages ')!,
    /120 in, 100 handled, 3 refused, 0 dead, 30 console reads/,
  );
  assert.match(find(lines, '  latency ')!, /p99 900us|p99 0\.9ms/);
  assert.ok(find(lines, 'recent errors: 1'));
  const errorText = lines.filter((l) => l.startsWith('    ') && /y{10}|END|ERR_/.test(l)).join('');
  assert.ok(
    errorText.includes('ERR_GRANT_REVOKED') && errorText.includes('END'),
    'the error in full',
  );
  assert.ok(find(lines, '"live": 3'));
  // j moves to the next actor and asks for it; Esc closes.
  s.selected = 'journal';
  assert.equal(handleKey(s, 'j', T0), [{ type: 'inspect', actor: 'grants' }]);
  handleKey(s, 'escape', T0);
  assert.is(s.inspect, null);
  assert.ok(find(text(s), 'ACTOR'), 'the table is back');
});

test('node not running: said plainly, with the socket, and no stale tables', () => {
  const s = connected();
  applyActors(s, [actor('journal')], T0);
  s.connected = false;
  const lines = text(s);
  assert.match(lines[0]!, /NODE NOT RUNNING/);
  assert.ok(find(lines, 'node not running'));
  assert.ok(find(lines, 'no answer on /run/meshnode/admin.sock'));
  assert.not.ok(find(lines, 'journal'));
  const first = initialState('/x.sock');
  assert.ok(find(text(first), 'connecting to the node'), 'before first contact: connecting');
});

test("directory pane: nodes with mesh IP, version and endpoint; services with this node's subscription", () => {
  const s = connected();
  s.pane = 'directory';
  s.directory = {
    nodes: [
      {
        did: ME,
        name: 'alpha',
        gossip: 'wss://10.0.0.1:7946/gossip',
        meshIp: '10.0.0.1',
        version: '0.1.0',
        self: true,
      },
      {
        did: PEER,
        name: 'beta',
        gossip: 'wss://10.0.0.2:7946/gossip',
        meshIp: '10.0.0.2',
        version: null,
        self: false,
      },
    ],
    services: [
      {
        provider: PEER,
        providerName: 'beta',
        service: 'ssh',
        port: 22,
        proto: 'tcp',
        mode: 'manual',
        subscription: { id: hex('a'), state: 'pending' },
      },
    ],
    more: { nodes: false, services: true },
  };
  const lines = text(s, 120, 30);
  assert.ok(find(lines, '[5 Directory]'), 'the tab is shown selected');
  assert.ok(find(lines, ' 2 nodes'));
  assert.match(find(lines, 'alpha *')!, /10\.0\.0\.1\s+0\.1\.0\s+wss:\/\/10\.0\.0\.1:7946\/gossip/);
  assert.ok(find(lines, ' 1+ services'), 'more pages are marked');
  assert.match(find(lines, 'ssh')!, /beta\s+ssh\s+22\/tcp\s+manual\s+pending aaaaaaaa/);
});

test('members pane: rights, inviter, the expelled marked with their cut; open when no mesh', () => {
  const s = connected();
  s.pane = 'members';
  s.members = {
    mesh: { id: hex('c'), name: 'lab', admission: 'closed', known: true },
    rows: [
      {
        did: ME,
        name: 'alpha',
        rights: ['member.invite', 'member.expel'],
        invitedBy: null,
        expelled: null,
      },
      { did: PEER, name: 'beta', rights: [], invitedBy: ME, expelled: { by: ME, cut: 7 } },
    ],
  };
  const lines = text(s, 120, 30);
  assert.ok(find(lines, 'mesh lab cccccccc'));
  assert.match(find(lines, 'alpha')!, /founder\s+member\.invite,member\.expel/);
  assert.match(find(lines, 'beta')!, /expelled by .*cut at 7/);
  s.members = { mesh: { id: null, name: null, admission: 'open', known: false }, rows: [] };
  assert.ok(find(text(s), 'open: no mesh'));
});

test('what other nodes wrote cannot drive the terminal: only printable ASCII is drawn', () => {
  assert.is(printable('web\x1b[2J\x07é'), 'web?[2J??');
  const s = connected();
  s.pane = 'grants';
  s.grants = { live: [], activations: [] };
  applyTail(
    s,
    [tail(1, hex('1'), PEER, 'subscribe', { provider: ME, service: 'x\x1b]0;pwned\x07' })],
    ME,
  );
  for (const l of text(s)) assert.not.match(l, /[^\x20-\x7e]/);
  // A node record and an offer, as hostile as the schemas let them be.
  s.pane = 'directory';
  s.directory = {
    nodes: [
      {
        did: PEER,
        name: 'x',
        gossip: 'wss://h\x1b[2J\u202e:1/g',
        meshIp: '10.0.0.9',
        version: null,
        self: false,
      },
    ],
    services: [],
    more: { nodes: false, services: false },
  };
  for (const l of text(s)) assert.not.match(l, /[^\x20-\x7e]/);
});

test('cells and numbers: cut with ~, aligned; durations, rates, latencies, sizes', () => {
  assert.is(cell('abcdefgh', 5), 'abcd~');
  assert.is(cell('ab', 5, true), '   ab');
  assert.is(duration(45_000), '45s');
  assert.is(duration(725_000), '12m05s');
  assert.is(duration(3 * 3600_000 + 4 * 60_000), '3h04m');
  assert.is(duration(51 * 3600_000), '2d03h');
  assert.is(perSecond(0), '0');
  assert.is(perSecond(12.34), '12.3');
  assert.is(perSecond(4567), '4567');
  assert.is(perSecond(12_345), '12.3k');
  assert.is(micros(950), '950us');
  assert.is(micros(1200), '1.20ms');
  assert.is(micros(35_000), '35.0ms');
  assert.is(micros(1_500_000), '1.50s');
  assert.is(megabytes(12.3 * 1024 * 1024), '12.3M');
  assert.is(megabytes(2048 * 1024 * 1024), '2.0G');
  assert.is(shortDid(ME), 'z6MkhaXg..ta2doK');
});

function tail(
  arrival: number,
  id: string,
  author: string,
  kind: string,
  body: unknown,
  ts = T0,
): TailRecord {
  return { arrival, id, entry: { author, seq: arrival, ts, kind, body } };
}

test.run();
