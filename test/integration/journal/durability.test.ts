/**
 * What an acknowledged append is worth when things die:
 *  (a) the whole process SIGKILLed under a load of appends (a driver process
 *      prints each ack; we kill it mid-stream and reopen its state dir);
 *  (b) the journal actor alone crashing while callers keep appending and
 *      retrying with the same requestIds;
 *  (c) two node processes on one state directory, and a stale pid file.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { MAX_RANGE, JournalStore } from '../../../actors/journal/store.js';
import { verifyJournal } from '../../../actors/journal/verify.js';
import { LOCK_FILE } from '../../../supervisor/state-lock.js';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import { append, bodies, journalDir, startNode, status, withNode } from '../../helpers/journal.js';
import type { AppendAck } from '../../helpers/journal.js';
import { jsonLines } from '../../helpers/process.js';
import { describe, sleep, tempDir, until } from '../../helpers/test.js';

const test = describe('journal/durability', 60_000);
const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../../fixtures/journal/append-driver.js', import.meta.url));
const CLI = join(ROOT, 'dist', 'supervisor', 'cli.js');

interface Ack {
  requestId: string;
  id: string;
  seq: number;
}

const exitOf = (proc: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null)
      return resolve({ code: proc.exitCode, signal: proc.signalCode });
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });

/**
 * Everything a reopened journal must show for one node feed: each ack with
 * its id at its seq, every entry carrying the request record written in its
 * transaction (no half-applied batch), one arrival per entry, views at the
 * head, and a clean verify.
 */
async function assertConsistent(
  store: JournalStore,
  did: string,
  acks: Ack[],
  requestIds: string[],
  when: string,
): Promise<void> {
  const head = store.head(did);
  assert.ok(head, `${when}: the node's feed exists`);
  assert.equal(Object.keys(store.versionVector()), [did], `${when}: one feed`);
  for (const a of acks) {
    assert.is(store.request(a.requestId)?.id, a.id, `${when}: ${a.requestId} kept its id`);
    assert.is(store.idAt(did, a.seq), a.id, `${when}: ${a.requestId} at seq ${a.seq}`);
  }
  const maxAcked = Math.max(0, ...acks.map((a) => a.seq));
  assert.ok(head!.seq >= maxAcked, `${when}: head ${head!.seq} < acked seq ${maxAcked}`);
  assert.is(store.count(), head!.seq, `${when}: entries = head seq`);
  const recorded = new Set<string>();
  for (const r of requestIds) {
    const rec = store.request(r);
    if (!rec) continue;
    assert.ok(store.byId(rec.id), `${when}: ${r} points to a stored entry`);
    assert.not.ok(recorded.has(rec.id), `${when}: ${rec.id} recorded twice`);
    recorded.add(rec.id);
  }
  assert.is(recorded.size, store.count(), `${when}: every entry has its request record`);
  assert.is(store.tail(0, MAX_RANGE).length, store.count(), `${when}: one arrival per entry`);
  assert.is(store.view('nodes', did)?.seq, head!.seq, `${when}: views at the head`);
  const report = await verifyJournal(store);
  assert.ok(report.ok, `${when}: verify ${JSON.stringify(report)}`);
}

test('(a) SIGKILL mid-stream, three times: every acknowledged append survives, no partial entry', async () => {
  const dir = tempDir();
  const acks: Ack[] = [];
  const requestIds: string[] = [];
  let did = '';
  const COUNT = 3000;
  for (let round = 0; round < 3; round++) {
    const prefix = `r${round}`;
    for (let i = 0; i < COUNT; i++) requestIds.push(`${prefix}-${i}`);
    const proc = spawn(process.execPath, [DRIVER, dir, prefix, String(COUNT), '16'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = jsonLines(proc);
    const killAfter = 40 + round * 35;
    await until(
      () => out.lines.filter((l) => l.requestId).length >= killAfter,
      30_000,
      `${killAfter} acks in round ${round}`,
    );
    proc.kill('SIGKILL');
    const exit = await exitOf(proc);
    await out.closed;
    assert.is(exit.signal, 'SIGKILL', `round ${round}: killed, not finished`);
    assert.not.ok(
      out.lines.some((l) => l.done),
      `round ${round}: the driver finished before the kill`,
    );
    did = String(out.lines.find((l) => l.ready)!.did);
    const roundAcks = out.lines.filter((l) => l.requestId) as unknown as Ack[];
    assert.ok(roundAcks.length >= killAfter);
    acks.push(...roundAcks);
    const store = await JournalStore.open(journalDir(dir));
    try {
      await assertConsistent(store, did, acks, requestIds, `after kill ${round + 1}`);
    } finally {
      await store.close();
    }
  }
  // The node comes back on the killed state dir and goes on from its head.
  await withNode(dir, async (sup) => {
    const h = ((await sup.ask('journal', 'heads')) as Record<string, number>)[did]!;
    const ack = await append(sup, 'after-kills', 'node', bodies.node(1));
    assert.is(ack.author, did, 'same key');
    assert.is(ack.seq, h + 1);
    for (const a of acks.slice(0, 20)) {
      const again = await append(
        sup,
        a.requestId,
        'node',
        bodies.node(Number(a.requestId.split('-')[1]) + 1),
      );
      assert.is(again.id, a.id, `${a.requestId} is idempotent after the kill`);
    }
    assert.equal((await sup.ask('journal', 'verify')) as { ok: boolean }, {
      ok: true,
      feeds: 1,
      entries: h + 1,
    });
  });
}, 120_000);

const RETRYABLE = new Set(['ERR_ACTOR_EXITED', 'ERR_TIMEOUT', 'ERR_STOPPING', 'ERR_MAILBOX_FULL']);

/** Set when a killed journal worker never exits: the node cannot be stopped, so neither can this file. */
let wedged = false;
test.after(() => {
  // A worker stuck in native teardown keeps this process alive after the
  // summary, and process.exit() would wait for it forever (it joins worker
  // threads): once the summary is out, leave the hard way.
  if (wedged) setTimeout(() => process.kill(process.pid, 'SIGKILL'), 2000);
});

/** Append until acknowledged, retrying the same requestId on the errors a crash causes. */
async function appendWithRetry(
  sup: Supervisor,
  requestId: string,
  body: Record<string, unknown>,
  retries: { n: number },
  give: { up: boolean },
): Promise<AppendAck> {
  for (;;) {
    try {
      return await append(sup, requestId, 'node', body, 5000);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!RETRYABLE.has(code) || give.up) throw err;
      retries.n++;
      await sleep(5);
    }
  }
}

/** sup.kill, bounded: the killed worker must be gone (and restarted) within `ms`. */
async function killJournal(sup: Supervisor, ms = 10_000): Promise<void> {
  const before = sup.info().find((x) => x.name === 'journal')!;
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([
    sup.kill('journal', 'durability test').then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  if (!gone) {
    wedged = true;
    throw new Error(
      `the killed journal worker (thread ${before.threadId}) did not exit within ${ms} ms: ` +
        'it is stuck in teardown, so the supervisor can neither restart nor stop it',
    );
  }
  await until(
    () =>
      sup
        .info()
        .some((x) => x.name === 'journal' && x.restarts > before.restarts && x.state === 'running'),
    15_000,
    'journal restarted',
  );
}

test('(b) the journal actor crashing under appends: none lost, none doubled, verify ok', async () => {
  const dir = tempDir();
  // Eight crashes in a few seconds: above the default restart intensity (5 in 10 s).
  const node = await startNode(dir, { supervisor: { max_restarts: 50 } });
  const sup = node.sup;
  const give = { up: false };
  try {
    const CALLERS = 6;
    const PER = 60;
    const retries = { n: 0 };
    const acks = new Map<string, AppendAck>();
    let done = 0;
    const callers = Array.from({ length: CALLERS }, async (_, c) => {
      for (let i = 0; i < PER; i++) {
        const requestId = `c${c}-${i}`;
        const body = bodies.node(c * PER + i + 1);
        const ack = await appendWithRetry(sup, requestId, body, retries, give);
        acks.set(requestId, ack);
        done++;
      }
    });
    // Kills land while appends are in flight: some inside a commit.
    const killer = (async () => {
      for (const at of [20, 60, 100, 140, 180, 220, 260, 300]) {
        await until(() => done >= at, 30_000, `${at} acks`);
        await killJournal(sup);
      }
    })();
    await Promise.all([...callers, killer]);
    assert.is(acks.size, CALLERS * PER);
    assert.ok(retries.n > 0, 'the crashes hit appends in flight (otherwise this proves little)');
    const ids = new Set([...acks.values()].map((a) => a.id));
    assert.is(ids.size, CALLERS * PER, 'one entry per requestId');
    assert.equal(
      [...acks.values()].map((a) => a.seq).sort((x, y) => x - y),
      Array.from({ length: CALLERS * PER }, (_, i) => i + 1),
      'seqs 1..N, no gaps, no doubles',
    );
    assert.is((await status(sup)).entries, CALLERS * PER, 'no entry without an ack');
    // Asking again returns the same entry, for every one of them.
    for (const [requestId, ack] of acks) {
      const [c, i] = requestId.slice(1).split('-').map(Number) as [number, number];
      assert.equal(await append(sup, requestId, 'node', bodies.node(c * PER + i + 1)), ack);
    }
    assert.equal(await sup.ask('journal', 'verify'), {
      ok: true,
      feeds: 1,
      entries: CALLERS * PER,
    });
  } finally {
    give.up = true;
    // A wedged node cannot stop; do not hang the file on it.
    if (!wedged) await node.stop();
    else void node.stop();
  }
}, 120_000);

// ---------------------------------------------------------------------------
// (c) one node per state directory

function startCli(configPath: string) {
  const proc = spawn(process.execPath, [CLI, 'start', '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { proc, ...jsonLines(proc) };
}

function writeConfig(dir: string): { config: string; state: string } {
  const state = join(dir, 'state');
  const config = join(dir, 'meshnode.toml');
  writeFileSync(
    config,
    `[node]\nstate_dir = "${state}"\n[metrics]\nlisten = ""\n[gossip]\nlisten = ""\n`,
  );
  return { config, state };
}

const isReady = (lines: Array<Record<string, unknown>>) =>
  lines.some((l) => l.msg === 'meshnode ready');

test('(c) a second node on the same state dir refuses with ERR_STATE_LOCKED; the first runs on', async () => {
  const { config, state } = writeConfig(tempDir());
  const first = startCli(config);
  try {
    await until(() => isReady(first.lines), 30_000, 'first node ready');
    const second = startCli(config);
    const exit = await exitOf(second.proc);
    await second.closed;
    assert.is.not(exit.code, 0, 'the second node exits non-zero');
    const refusal = second.lines.find((l) => l.code === 'ERR_STATE_LOCKED');
    assert.ok(refusal, `a log line with code ERR_STATE_LOCKED: ${JSON.stringify(second.lines)}`);
    assert.not.ok(isReady(second.lines), 'the second node never came up');
    assert.is(first.proc.exitCode, null, 'the first node still runs');
    assert.is(readFileSync(join(state, LOCK_FILE), 'utf8').trim(), String(first.proc.pid));
    first.proc.kill('SIGTERM');
    assert.equal(await exitOf(first.proc), { code: 0, signal: null });
    assert.not.ok(existsSync(join(state, LOCK_FILE)), 'the lock is released on a clean stop');
  } finally {
    first.proc.kill('SIGKILL');
  }
});

test('(c) a stale pid file (its process is dead) is taken over', async () => {
  const { config, state } = writeConfig(tempDir());
  // A pid that existed and is gone now.
  const dead = Number(
    execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']),
  );
  execFileSync('mkdir', ['-p', state]);
  writeFileSync(join(state, LOCK_FILE), `${dead}\n`);
  const node = startCli(config);
  try {
    await until(() => isReady(node.lines), 30_000, 'node ready');
    assert.is(readFileSync(join(state, LOCK_FILE), 'utf8').trim(), String(node.proc.pid));
    node.proc.kill('SIGTERM');
    assert.equal(await exitOf(node.proc), { code: 0, signal: null });
    assert.not.ok(existsSync(join(state, LOCK_FILE)));
  } finally {
    node.proc.kill('SIGKILL');
  }
});

test('(c) a node SIGKILLed leaves a pid file that the next start takes over', async () => {
  const { config, state } = writeConfig(tempDir());
  const first = startCli(config);
  await until(() => isReady(first.lines), 30_000, 'first node ready');
  first.proc.kill('SIGKILL');
  await exitOf(first.proc);
  assert.ok(existsSync(join(state, LOCK_FILE)), 'SIGKILL leaves the pid file behind');
  const second = startCli(config);
  try {
    await until(() => isReady(second.lines), 30_000, 'second node ready');
    second.proc.kill('SIGTERM');
    assert.equal(await exitOf(second.proc), { code: 0, signal: null });
  } finally {
    second.proc.kill('SIGKILL');
  }
});

test.run();
