/**
 * `meshnode console` for real: a shell in an 80x24 tmux terminal runs the
 * console against a running node; the test types keys and reads the
 * screen, as an operator over SSH would. Covers what the screen shows, an
 * actor killed behind the console's back (its restart count goes up), the
 * keys for sorting, panes, restart, trace, approve and revoke, the node
 * going away and coming back, and the terminal given back on q and Ctrl-C.
 */
import * as assert from 'uvu/assert';
import { CLI, RawAdmin, startNode } from '../../helpers/meshnode.js';
import type { RunningNode } from '../../helpers/meshnode.js';
import { Tmux, tmuxMissing } from '../../helpers/tmux.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/console', 60_000);
const skipReason = tmuxMissing();

let node: RunningNode;
let admin: RawAdmin;
let term: Tmux;
let did = '';

/** The row of the actors table for `name` (cells split on spaces). */
const actorRow = (screen: string[], name: string) =>
  screen
    .find((l) => l.startsWith(` ${name} `))
    ?.trim()
    .split(/\s+/);
const consoleCommand = () => `${process.execPath} ${CLI} console --socket ${node.socket}`;

async function call(method: string, params?: Record<string, unknown>) {
  const a = await admin.request(method, params);
  if (!a.ok) throw new Error(`${method}: ${JSON.stringify(a.error)}`);
  return a.result as Record<string, unknown>;
}

if (skipReason) {
  test.skip(`console in tmux (${skipReason})`);
} else {
  test.before(async () => {
    node = await startNode();
    admin = await RawAdmin.connect(node.socket);
    did = String((await call('journal.status')).did);
    // A plain shell first, so the test can see the console hand the terminal back to it.
    term = await Tmux.start("env PS1='$ ' bash --norc --noprofile", 80, 24);
    await term.waitForText(/^\$\s*$/);
    await term.type('echo shell-before-console');
    await term.keys('Enter');
    await term.waitForText(/^shell-before-console$/);
    await term.type(`${consoleCommand()}; echo "console exited $?"`);
    await term.keys('Enter');
  });

  test.after(async () => {
    await term?.kill();
    admin?.close();
    await node?.stop();
  });

  test('the first screen: title, the node DID, every actor running, in 80x24', async () => {
    const screen = await term.waitFor(
      (s) => ['journal', 'nft', 'grants', 'gossip'].every((n) => actorRow(s, n)?.[1] === 'running'),
      'every actor running',
    );
    assert.is(screen.length, 24);
    assert.match(
      screen[0]!,
      new RegExp(`^ meshnode console  pid ${node.proc.pid}  up \\d+s  actors 4/4`),
    );
    assert.ok(screen[1]!.includes(did), `the node line shows ${did}`);
    const header = screen.find((l) => l.startsWith(' ACTOR'))!;
    assert.match(header, /ACTOR\s+STATE\s+UPTIME\s+RST\s+MBOX\s+MSG\/S\s+P99\s+HEAP\s+LAST ERROR/);
    assert.equal(actorRow(screen, 'journal')!.slice(0, 5), [
      'journal',
      'running',
      actorRow(screen, 'journal')![2]!,
      '0',
      '0',
    ]);
    assert.match(screen[23]!, /q:quit .* r:restart .* t:trace a:approve v:revoke/);
    assert.is(await term.paneFormat('alternate_on'), '1', 'on the alternate screen');
  });

  test('an actor killed through the admin API: the restart count goes up, the exit is shown', async () => {
    await call('kill', { actor: 'nft' });
    const screen = await term.waitFor(
      (s) => actorRow(s, 'nft')?.[1] === 'running' && actorRow(s, 'nft')?.[3] === '1',
      'nft running again with 1 restart',
    );
    const row = screen.find((l) => l.startsWith(' nft '))!;
    assert.match(row, /exit: killed/);
    assert.equal(actorRow(screen, 'journal')![3], '0', 'the others did not restart');
  });

  test('sorting: > steps through the columns, the header marks it, i inverts', async () => {
    await term.type('>');
    let screen = await term.waitForText('ACTOR ^');
    const names = (s: string[]) =>
      s
        .filter((l) => /^ (journal|nft|grants|gossip) /.test(l))
        .map((l) => l.trim().split(/\s+/)[0]);
    assert.equal(names(screen), ['gossip', 'grants', 'journal', 'nft']);
    await term.type('i');
    screen = await term.waitForText('ACTOR v');
    assert.equal(names(screen), ['nft', 'journal', 'grants', 'gossip']);
    await term.type('>>>');
    screen = await term.waitForText('RST v');
    assert.is(names(screen)[0], 'nft', 'the one with a restart first');
    // Back to start order: past the last column.
    await term.type('>>>>>>');
    screen = await term.waitFor(
      (s) => !s.some((l) => / [v^]( |$)/.test(l.slice(0, 80)) && l.startsWith(' ACTOR')),
      'no sort mark',
    );
    assert.equal(names(screen), ['journal', 'nft', 'grants', 'gossip']);
  });

  test('restart by key: r, then y; the message says so and the count goes up', async () => {
    // journal is selected first (start order); two down is grants.
    await term.type('jj');
    await term.type('r');
    await term.waitForText(' restart grants? (y/N)');
    await term.type('n');
    await term.waitForText(' restart cancelled');
    await term.type('r');
    await term.waitForText(' restart grants? (y/N)');
    await term.type('y');
    await term.waitForText(' grants restarted', 30_000);
    await term.waitFor((s) => actorRow(s, 'grants')?.[3] === '1', 'grants shows 1 restart');
  });

  test('panes: peers, feeds with our feed, grants', async () => {
    await term.waitForText(/0 open, 0 other, 0 dialing, 0 banned/);
    // Our first entry starts our feed.
    await call('offer', {
      service: 'web',
      port: 8080,
      proto: 'tcp',
      mode: 'manual',
      leaseSeconds: 60,
    });
    await term.type('2');
    await term.waitForText(/^ \d+ feeds, \d+ entries/);
    // Our own feed, marked, with its head and the time of its newest entry.
    await term.waitForText(
      new RegExp(`^ \\*${did.slice('did:key:'.length)}\\s+\\d+ \\d\\d:\\d\\d:\\d\\d \\(`),
    );
    await term.type('3');
    await term.waitForText(' granted by this node: 0');
    await term.waitForText(' waiting for approval: 0');
  });

  test('approve and revoke by typing an id prefix', async () => {
    // Our own node subscribes to our service: a subscription waiting for our approval.
    const sub = String((await call('subscribe', { provider: did, service: 'web' })).id);
    const screen = await term.waitForText(sub.slice(0, 12));
    assert.ok(screen.some((l) => l.includes(' waiting for approval: 1')));
    await term.type('a');
    await term.waitForText(' approve subscription id: _');
    await term.type(sub.slice(0, 10));
    await term.keys('Enter');
    const approved = await term.waitForText(`approved ${sub.slice(0, 12)}: entry `);
    const approval = /entry ([0-9a-f]{12})/.exec(
      approved.find((l) => l.includes('approved'))!,
    )![1]!;
    await term.waitForText(' waiting for approval: 0');
    // The approval is in the journal, with the id the console showed.
    const tail = (await admin.request('journal.tail', { after: 0, limit: 100 })).result as Array<{
      id: string;
      entry: { kind: string; body: { subscription?: string } };
    }>;
    const entry = tail.find((t) => t.entry.kind === 'approve')!;
    assert.is(entry.entry.body.subscription, sub);
    assert.ok(entry.id.startsWith(approval));
    // Revoke it by its prefix; a bad id is refused on the message line without leaving the console.
    await term.type('v');
    await term.type('zz');
    await term.keys('Enter');
    await term.waitForText(/an entry id is 64 hex digits/);
    await term.type('v');
    await term.type(approval);
    await term.keys('Enter');
    // A revoke is asked first.
    await term.waitForText(`revoke ${approval}? (y/N)`);
    await term.type('y');
    await term.waitForText(`revoked ${approval}: entry `);
  });

  test('pick a waiting subscription with ] and approve it with a, y; ? shows the keys', async () => {
    await call('offer', {
      service: 'pick',
      port: 8081,
      proto: 'tcp',
      mode: 'manual',
      leaseSeconds: 60,
    });
    const sub = String((await call('subscribe', { provider: did, service: 'pick' })).id);
    await term.waitForText(sub.slice(0, 12));
    await term.type(']');
    await term.waitForText(' waiting for approval: 1');
    // The picked row is the only waiting one (no grants, no activations on this node).
    await term.type('a');
    await term.waitForText(/approve .*'s subscription to pick\? \(y\/N\)/);
    await term.type('y');
    await term.waitForText(`approved ${sub.slice(0, 12)}: entry `);
    await term.waitForText(' waiting for approval: 0');
    await term.type('?');
    await term.waitForText(' keys of the console (any key closes this)');
    await term.type(' ');
    await term.waitForText(' waiting for approval: 0');
  });

  test('Enter inspects the selected actor; Esc goes back to the table', async () => {
    await term.type('<<<<<<<<<<'); // start order: journal first
    await term.type('kkkk'); // select journal
    await term.keys('Enter');
    const screen = await term.waitForText(
      /^ {2}mailbox +\d+ waiting, \d+ running \(high water \d+\)/,
    );
    assert.ok(
      screen.some((l) => l.startsWith(' inspect journal')),
      screen.join('\n'),
    );
    assert.ok(
      screen.some((l) => /^ {2}messages .* console reads/.test(l)),
      'its own reads apart',
    );
    await term.keys('Escape');
    await term.waitForText(/^ ACTOR\s+STATE/);
  });

  test('a live trace of one actor, with its count and time limit', async () => {
    await term.type('<<<<<<<<<<'); // start order: journal first
    await term.type('kkkk'); // select journal
    await term.type('t');
    await term.waitForText(/ trace journal: count and seconds \[100 10\]: _/);
    await term.type('3 20');
    await term.keys('Enter');
    // The console's own polls are left out of the trace: what it sees is ours (and the actors').
    await term.waitForText(/ trace journal: \d+ of 3 messages, \d+ s left/);
    for (let i = 0; i < 3; i++) await call('journal.heads');
    const screen = await term.waitForText(' trace journal: done, 3 of 3 messages', 20_000);
    const rows = screen.filter((l) =>
      /^ \d\d:\d\d:\d\d\.\d{3} +(admin|grants|gossip) +(ask|tell) +\w+ +\d/.test(l),
    );
    assert.is(rows.length, 3, screen.join('\n'));
    // From admin only our heads: the console asked status, tail, catalog … meanwhile.
    assert.ok(
      rows.filter((l) => / admin +ask /.test(l)).every((l) => / ask +heads /.test(l)),
      `no console poll traced: ${rows.join('\n')}`,
    );
    assert.ok(screen.some((l) => l.startsWith('  1 Peers   2 Feeds   3 Grants  [4 Trace]')));
  });

  test('the node goes away: "node not running", then it is back and shown again', async () => {
    const pid = node.proc.pid;
    admin.close();
    await node.stop();
    await term.waitForText('  node not running');
    await term.waitForText(/^ meshnode console {2}NODE NOT RUNNING/);
    node = await startNode({ dir: node.dir });
    admin = await RawAdmin.connect(node.socket);
    assert.is.not(node.proc.pid, pid);
    await term.waitForText(new RegExp(`^ meshnode console  pid ${node.proc.pid} `), 20_000);
    await term.waitFor((s) => actorRow(s, 'gossip')?.[1] === 'running', 'actors back');
  });

  test('q leaves and gives the terminal back: normal screen, cooked mode, the shell', async () => {
    await term.type('q');
    const screen = await term.waitForText(/^console exited 0$/);
    assert.ok(
      screen.some((l) => l === 'shell-before-console'),
      'the shell screen is back as it was',
    );
    assert.is(await term.paneFormat('alternate_on'), '0');
    assert.is(await term.paneFormat('cursor_flag'), '1', 'the cursor is shown again');
    await term.type('stty -a | tr " " "\\n" | grep -x -e icanon -e -icanon -e echo -e -echo');
    await term.keys('Enter');
    const after = await term.waitFor(
      (s) => s.some((l) => /^-?icanon$/.test(l)) && s.some((l) => /^-?echo$/.test(l)),
      'stty output',
    );
    assert.ok(after.includes('icanon'), 'canonical mode again');
    assert.ok(after.includes('echo'), 'echo again');
  });

  test('Ctrl-C leaves too, also while a prompt is open', async () => {
    await term.type('clear');
    await term.keys('Enter');
    await term.type(`${consoleCommand()}; echo "console exited $?"`);
    await term.keys('Enter');
    await term.waitForText(/^ ACTOR/);
    await term.type('a');
    await term.waitForText(' approve subscription id: _');
    await term.keys('C-c');
    await term.waitForText(/^console exited 0$/);
    assert.is(await term.paneFormat('alternate_on'), '0');
  });
}

test.run();
