/**
 * `meshnode journal verify` as an operator runs it on a journal of 20,000
 * entries: a job followed to its report (no ask waits the whole verify),
 * --json progress events before the one final envelope, Ctrl-C cancels it
 * on the node (exit 130, ERR_CANCELLED), and a damaged journal exits 1.
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../../actors/journal/store.js';
import { Feed, checked, keyOf } from '../../helpers/journal.js';
import { cli, cliProcess, startNode } from '../../helpers/meshnode.js';
import type { RunningNode } from '../../helpers/meshnode.js';
import { describe, until } from '../../helpers/test.js';

const test = describe('supervisor/cli-verify', 120_000);

const FEEDS = 10;
const PER_FEED = 2000;

let node: RunningNode;
let extra: Feed[];
const on = (args: string[]) => [...args, '--socket', node.socket];

interface Line {
  v: number;
  ok?: boolean;
  event?: string;
  done?: number;
  total?: number;
  result?: { ok: boolean; entries: number; feeds: number };
  error?: { code: string; message: string };
}
const linesOf = (stdout: string): Line[] =>
  stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);

test.before(async () => {
  // A node's state, then other feeds written into its journal while it is down.
  const first = await startNode();
  await first.stop();
  extra = Array.from({ length: FEEDS }, (_, i) => new Feed(keyOf(40 + i)));
  const store = await JournalStore.open(join(first.stateDir, 'journal'));
  for (const f of extra) {
    f.fill(PER_FEED);
    await store.commit(f.entries.map(checked), []);
  }
  await store.close();
  node = await startNode({ dir: first.dir });
});

test.after(async () => {
  await node?.stop();
});

test('--json: progress events, then one envelope with the report; every entry checked', async () => {
  const r = await cli(on(['journal', 'verify', '--json']), 90_000);
  assert.is(r.code, 0, r.stderr);
  const lines = linesOf(r.stdout);
  const end = lines.at(-1)!;
  const progress = lines.slice(0, -1);
  assert.ok(progress.length >= 1, 'at least the first progress event');
  assert.ok(
    progress.every((p) => p.event === 'progress' && p.v === 1),
    'all but the last are progress',
  );
  assert.ok(
    progress.every((p, i) => i === 0 || p.done! >= progress[i - 1]!.done!),
    'done never goes back',
  );
  assert.equal([end.ok, end.result?.ok], [true, true], r.stdout.slice(-500));
  assert.ok(end.result!.entries >= FEEDS * PER_FEED, `${end.result!.entries} entries`);
  assert.ok(end.result!.feeds >= FEEDS);
  // Piped, the text form is the report alone (progress is for a terminal).
  const plain = await cli(on(['journal', 'verify']), 90_000);
  assert.is(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^journal ok: \d+ entries in \d+ feeds verified\n$/);
});

test('Ctrl-C cancels the job on the node: exit 130, ERR_CANCELLED, and the node stays up', async () => {
  const p = cliProcess(on(['journal', 'verify', '--json']));
  await until(() => p.stdout.includes('"event":"progress"'), 30_000, 'a progress event');
  p.proc.kill('SIGINT');
  assert.is(await p.exited, 130, p.stdout + p.stderr);
  const end = linesOf(p.stdout).at(-1)!;
  assert.is(end.ok, false);
  assert.is(end.error?.code, 'ERR_CANCELLED');
  assert.match(end.error!.message, /cancelled after \d+ of \d+ entries/);
  const status = await cli(on(['status', '--json']));
  assert.is(status.code, 0, 'the node answers after the cancel');
});

test('a damaged journal (an entry gone from the file) exits 1 and names it', async () => {
  await node.stop();
  const victim = extra[3]!;
  const raw = open({ path: join(node.stateDir, 'journal', 'journal.mdb'), maxDbs: 12 });
  await raw.openDB('entries', { encoding: 'binary' }).remove([victim.did, 1234]);
  await raw.close();
  node = await startNode({ dir: node.dir });
  const r = await cli(on(['journal', 'verify']), 90_000);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`journal BROKEN: ${victim.did} seq 1234: ERR_SEQ_GAP`));
});

test.run();
