/**
 * The journal on a full disk (root only: it mounts a 4 MiB tmpfs). A 1 MiB
 * ballast file is written first; the node's state directory lives beside it.
 * Appends run until the disk is full; the journal must refuse with
 * ERR_STORAGE_FULL, keep every acknowledged entry, still verify, stay up,
 * and take appends again once the ballast is deleted.
 *
 * The tests below share one mount and one node and run in order.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../../actors/journal/store.js';
import { append, bodies, journalDir, startNode, status } from '../../helpers/journal.js';
import type { AppendAck, RunningNode } from '../../helpers/journal.js';
import { describe, rootOnly, tempDir, until } from '../../helpers/test.js';

const test = describe('journal/disk-full', 60_000);
const skipReason = rootOnly();

const GROUP = 50;
/** More appends than a 4 MiB tmpfs can hold (≈ 1 KiB each with indexes and views). */
const MAX_APPENDS = 20_000;

let mount = '';
let node: RunningNode | null = null;
const acks: AppendAck[] = [];
let failure: { code: string; message: string } | null = null;
let restartsBefore = 0;

const journalInfo = () => node!.sup.info().find((c) => c.name === 'journal')!;

if (skipReason) {
  test.skip(`journal on a full disk (${skipReason})`);
} else {
  test.before(() => {
    mount = tempDir('meshnode-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mount]);
    writeFileSync(join(mount, 'ballast'), Buffer.alloc(1024 * 1024, 0xa5));
    mkdirSync(join(mount, 'state'));
  });

  test.after(async () => {
    await node?.stop().catch(() => {});
    if (mount) {
      try {
        execFileSync('umount', [mount]);
      } catch {
        execFileSync('umount', ['-l', mount]);
      }
    }
  });

  test('appends on a full disk are refused with ERR_STORAGE_FULL', async () => {
    node = await startNode(join(mount, 'state'));
    restartsBefore = journalInfo().restarts;
    let i = 0;
    while (!failure && i < MAX_APPENDS) {
      const group = Array.from({ length: GROUP }, () => {
        const n = i++;
        return append(node!.sup, `f-${n}`, 'node', bodies.node(n + 1), 10_000);
      });
      for (const r of await Promise.allSettled(group)) {
        if (r.status === 'fulfilled') acks.push(r.value);
        else failure ??= r.reason as { code: string; message: string };
      }
    }
    assert.ok(failure, `${MAX_APPENDS} appends fit on a 4 MiB disk?`);
    assert.ok(acks.length > 100, `only ${acks.length} appends before the disk was full`);
    assert.is(failure!.code, 'ERR_STORAGE_FULL', `got ${failure!.code}: ${failure!.message}`);
  });

  test('the journal actor stays up through a full disk (no crash, no restart)', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const info = journalInfo();
    assert.is(
      info.restarts,
      restartsBefore,
      `journal restarted; last exit: ${JSON.stringify(info.lastExit)}`,
    );
  });

  test('every acknowledged append is there and the journal verifies', async () => {
    await until(() => journalInfo().state === 'running', 10_000, 'journal running');
    const sup = node!.sup;
    for (const a of acks) {
      const e = (await sup.ask('journal', 'get', { id: a.id })) as { seq: number } | null;
      assert.ok(e, `acknowledged ${a.id} (seq ${a.seq}) is missing`);
      assert.is(e!.seq, a.seq);
    }
    const report = (await sup.ask('journal', 'verify', undefined, { timeoutMs: 30_000 })) as {
      ok: boolean;
      entries: number;
    };
    assert.ok(report.ok, JSON.stringify(report));
    assert.ok(report.entries >= acks.length);
    const st = await status(sup);
    assert.is(st.entries, report.entries);
  });

  test('appends signed behind a commit that fails are signed again, not stored on a gap', async () => {
    // More in flight than one signed batch (500): one batch commits and fails
    // while the next, chained onto it, is already signed.
    const sup = node!.sup;
    const before = (await sup.stats('journal')).metrics['journal_appends_resealed_total'] ?? 0;
    const wave = await Promise.allSettled(
      Array.from({ length: 1500 }, (_, k) =>
        append(sup, `wave-${k}`, 'node', bodies.node(k + 1), 10_000),
      ),
    );
    const refused = wave.filter((r) => r.status === 'rejected');
    assert.ok(refused.length > 0, 'the wave fit on a full disk?');
    for (const r of refused)
      assert.is((r.reason as { code: string }).code, 'ERR_STORAGE_FULL', String(r.reason));
    for (const r of wave) if (r.status === 'fulfilled') acks.push(r.value);
    const after = (await sup.stats('journal')).metrics['journal_appends_resealed_total'] ?? 0;
    assert.ok(after > before, 'no append was signed behind a failed commit (nothing tested)');
  });

  test('once space is freed, appends succeed again', async () => {
    unlinkSync(join(mount, 'ballast'));
    await until(() => journalInfo().state === 'running', 10_000, 'journal running');
    const sup = node!.sup;
    const head = ((await sup.ask('journal', 'heads')) as Record<string, number>)[acks[0]!.author]!;
    const more: AppendAck[] = [];
    for (let k = 0; k < 100; k++) {
      more.push(await append(sup, `after-${k}`, 'node', bodies.node(k + 1), 10_000));
    }
    assert.is(more[0]!.seq, head + 1);
    assert.is(more.at(-1)!.seq, head + 100);
    // A retry of a refused append (same requestId) now goes through too.
    assert.ok(await append(sup, `f-${acks.length + 1}`, 'node', bodies.node(1), 10_000));
    const report = (await sup.ask('journal', 'verify', undefined, { timeoutMs: 30_000 })) as {
      ok: boolean;
    };
    assert.ok(report.ok, JSON.stringify(report));
  });

  test('after a stop the state dir reopens with everything acknowledged', async () => {
    await node!.stop();
    node = null;
    const store = await JournalStore.open(journalDir(join(mount, 'state')), { readOnly: true });
    try {
      for (const a of acks) assert.is(store.idAt(a.author, a.seq), a.id);
    } finally {
      await store.close();
    }
  });
}

test.run();
