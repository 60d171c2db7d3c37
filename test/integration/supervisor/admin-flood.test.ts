/**
 * What admin clients can make a node hold (found by a hostile review: 32
 * connections x 100 `journal.heads` of 732 KB took RSS to 4.7 GB and the
 * heartbeat killed every actor). A node holding 3,000 feeds (so each answer
 * is ~200 KB) gets 32 connections x 100 `journal.heads` written at once by
 * clients that do not read; the node's RSS growth is stated and bounded
 * (in-flight requests per connection and in total, unread answers per
 * connection), then the clients read and every answer arrives, no actor
 * restarted.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import * as assert from 'uvu/assert';
import { keyPairFromSeed } from '../../../runtime/crypto/index.js';
import { Feed } from '../../helpers/journal.js';
import { RawSession } from '../../helpers/gossip-wire.js';
import { RawAdmin, startNode } from '../../helpers/meshnode.js';
import { describe, sleep, until } from '../../helpers/test.js';

const test = describe('supervisor/admin-flood', 120_000);

const FEEDS = 3000;
// The admin server takes 32 connections; one is the test's own.
const CONNECTIONS = 31;
const PER_CONNECTION = 100;
/** The bound asserted: before, this attack grew RSS by gigabytes. */
const MAX_GROWTH_MB = 200;

const rssMb = (pid: number): number =>
  Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test('32 clients x 100 journal.heads that do not read: RSS bounded, every answer delivered', async () => {
  const node = await startNode();
  try {
    const admin = await RawAdmin.connect(node.socket);
    const port = ((await admin.request('peers')) as unknown as { result: { listening: number } })
      .result.listening;
    // 3,000 one-entry feeds, handed over by a raw peer answering the node's wants.
    const feeds = Array.from({ length: FEEDS }, () => {
      const f = new Feed(keyPairFromSeed(new Uint8Array(randomBytes(32))));
      f.fill(1);
      return f;
    });
    const byDid = new Map(feeds.map((f) => [f.did, f]));
    const peer = await RawSession.open(port, keyPairFromSeed(new Uint8Array(randomBytes(32))));
    for (let i = 0; i < FEEDS; i += 1000) {
      const heads = Object.fromEntries(feeds.slice(i, i + 1000).map((f) => [f.did, 1]));
      peer.send(JSON.stringify({ t: 'vv', heads, more: i + 1000 < FEEDS }));
    }
    for (let served = 0; served < FEEDS; served++) {
      const want = await peer.take('want', 10_000);
      const f = byDid.get(want.author as string)!;
      peer.send(JSON.stringify({ t: 'entries', author: f.did, from: 1, entries: f.entries }));
    }
    await until(
      async () =>
        Object.keys(
          ((await admin.request('journal.heads')) as unknown as { result: object }).result,
        ).length >= FEEDS,
      30_000,
      'all feeds on the node',
    );
    peer.ws.terminate();
    const before = rssMb(node.proc.pid!);

    const sockets: Socket[] = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect(node.socket);
            s.once('connect', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    for (const [c, s] of sockets.entries()) {
      s.pause(); // never read: answers pile up on the node's side
      const lines = Array.from({ length: PER_CONNECTION }, (_, i) =>
        JSON.stringify({ v: 1, id: `c${c}-${i}`, method: 'journal.heads' }),
      );
      s.write(lines.join('\n') + '\n');
    }
    let peak = before;
    for (let i = 0; i < 50; i++) {
      peak = Math.max(peak, rssMb(node.proc.pid!));
      await sleep(100);
    }
    const growth = peak - before;
    console.log(
      `  admin flood: RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MB (+${growth.toFixed(0)})`,
    );
    assert.ok(growth < MAX_GROWTH_MB, `RSS grew ${growth.toFixed(0)} MB (bound ${MAX_GROWTH_MB})`);
    // The clients read now: every answer arrives.
    const counts = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<number>((resolve) => {
            let n = 0;
            let buf = '';
            s.setEncoding('utf8');
            s.on('data', (d: string) => {
              buf += d;
              let nl;
              while ((nl = buf.indexOf('\n')) >= 0) {
                buf = buf.slice(nl + 1);
                if (++n === PER_CONNECTION) resolve(n);
              }
            });
            s.resume();
          }),
      ),
    );
    assert.equal(
      counts,
      sockets.map(() => PER_CONNECTION),
      'every request answered',
    );
    for (const s of sockets) s.destroy();
    const actors = (
      (await admin.request('actors')) as unknown as {
        result: Array<{ name: string; restarts: number }>;
      }
    ).result;
    assert.ok(
      actors.every((a) => a.restarts === 0),
      `no restarts: ${JSON.stringify(actors)}`,
    );
    admin.close();
  } finally {
    await node.stop();
  }
});

test.run();
