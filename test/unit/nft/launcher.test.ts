/**
 * The nft launcher (actors/nft/launcher.ts) with a stand-in for nft: a shell
 * script that writes its argv and a line of stderr, and exits with a status
 * taken from its environment-free input. What is under test is the
 * launcher's contract — the fixed argv per mode, exit status and output per
 * job, one shell for many jobs, jobs answered in order, time limits, a dead
 * shell — not nft (test/integration/nft/ runs the real one in a namespace).
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { NftLauncher } from '../../../actors/nft/launcher.js';
import { describe, sleep, tempDir } from '../../helpers/test.js';

const test = describe('nft/launcher', 10_000);

/**
 * A fake nft: prints its argv on stdout, "fake stderr" on stderr; with
 * `-f FILE` or `-c -f FILE` it exits with the number in FILE (a batch of
 * "sleep" sleeps 5 s first), and records its pid in FILE.pid and its
 * parent's in FILE.ppid.
 */
function fakeNft(dir: string): string {
  const path = join(dir, 'fake-nft');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      'echo "$@"',
      'echo "fake stderr" >&2',
      'for last; do :; done',
      'if [ "$1" = "-f" ] || [ "$2" = "-f" ]; then',
      '  echo $$ > "$last.pid"',
      '  echo $PPID > "$last.ppid"',
      '  body=$(cat "$last")',
      '  if [ "$body" = "sleep" ]; then sleep 5; exit 0; fi',
      '  exit "$body"',
      'fi',
      'exit 0',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

function setup(timeoutMs = 5000): { dir: string; launcher: NftLauncher } {
  const dir = tempDir('meshnode-launcher-');
  return { dir, launcher: new NftLauncher(fakeNft(dir), 'tbl', 'probe_set', timeoutMs) };
}

/** A process that exists and is not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const out = (path: string) => readFileSync(`${path}.out`, 'utf8').trim();

test('each mode runs nft with its fixed argv; exit status and output come back per job', async () => {
  const { dir, launcher } = setup();
  try {
    const f = join(dir, 'job-1.nft');
    writeFileSync(f, '0');
    assert.is(await launcher.run('f', f), 0);
    assert.is(out(f), `-f ${f}`);
    assert.is(readFileSync(`${f}.err`, 'utf8').trim(), 'fake stderr');

    const c = join(dir, 'job-2.nft');
    writeFileSync(c, '3');
    assert.is(await launcher.run('c', c), 3, 'a failing check returns nft exit status');
    assert.is(out(c), `-c -f ${c}`);

    const l = join(dir, 'job-3.nft');
    assert.is(await launcher.run('l', l), 0);
    assert.is(out(l), '-j list table inet tbl');

    const s = join(dir, 'job-4.nft');
    assert.is(await launcher.run('s', s), 0);
    assert.is(out(s), '-j list set inet tbl probe_set');
  } finally {
    launcher.close();
  }
});

test('jobs in flight at once are answered in order, all by one shell', async () => {
  const { dir, launcher } = setup();
  try {
    const paths = Array.from({ length: 20 }, (_, i) => join(dir, `job-${i}.nft`));
    paths.forEach((p, i) => writeFileSync(p, String(i % 4)));
    const codes = await Promise.all(paths.map((p) => launcher.run('f', p)));
    assert.equal(
      codes,
      paths.map((_, i) => i % 4),
    );
    // Every nft was a child of the same shell, and not of this process.
    const parents = new Set(paths.map((p) => readFileSync(`${p}.ppid`, 'utf8').trim()));
    assert.is(parents.size, 1, 'one shell ran every job');
    assert.is.not([...parents][0], String(process.pid));
  } finally {
    launcher.close();
  }
});

test('a path that is not a plain absolute file name is refused before it reaches the shell', async () => {
  const { dir, launcher } = setup();
  try {
    for (const bad of ['relative.nft', `${dir}/a b`, `${dir}/x\nf /etc/passwd`, `${dir}/$(id)`]) {
      await launcher.run('f', bad).then(
        () => assert.unreachable(`accepted ${JSON.stringify(bad)}`),
        (err: { code?: string }) => assert.is(err.code, 'ERR_NFT_FAILED'),
      );
    }
    const ok = join(dir, 'job-ok.nft');
    writeFileSync(ok, '0');
    assert.is(await launcher.run('f', ok), 0, 'the launcher still works');
  } finally {
    launcher.close();
  }
});

test('a job over the time limit kills shell and nft, fails with ERR_NFT_FAILED; the next job gets a fresh shell', async () => {
  const { dir, launcher } = setup(300);
  try {
    const slow = join(dir, 'job-slow.nft');
    writeFileSync(slow, 'sleep');
    const t0 = Date.now();
    await launcher.run('f', slow).then(
      () => assert.unreachable('a stuck nft answered'),
      (err: { code?: string }) => assert.is(err.code, 'ERR_NFT_FAILED'),
    );
    assert.ok(Date.now() - t0 < 2000, 'failed at the limit, not when nft finished');
    await sleep(100);
    const pid = Number(readFileSync(`${slow}.pid`, 'utf8'));
    assert.not.ok(alive(pid), 'the stuck nft was killed');
    const next = join(dir, 'job-next.nft');
    writeFileSync(next, '0');
    assert.is(await launcher.run('f', next), 0);
  } finally {
    launcher.close();
  }
});

test('after close, jobs in flight are answered and new ones refused', async () => {
  const { dir, launcher } = setup();
  const a = join(dir, 'job-a.nft');
  writeFileSync(a, '0');
  const pending = launcher.run('f', a);
  launcher.close();
  assert.is(await pending, 0);
  await launcher.run('f', a).then(
    () => assert.unreachable('a closed launcher ran a job'),
    (err: { code?: string }) => assert.is(err.code, 'ERR_NFT_FAILED'),
  );
});

test.run();
