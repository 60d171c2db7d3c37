/**
 * An invalid signature inside a feed, across the mesh (issue 4: "an invalid
 * signature anywhere in a feed freezes that feed on every node"). The author
 * (a test key) signs its feed but one entry in the middle carries another
 * key's signature; the entries after it chain onto it and are properly
 * signed, so every journal takes the feed on its last entry's signature
 * (the chain authenticates the rest) and relays it. Each node's own
 * signature audit then finds the bad entry and stops the feed there:
 * ERR_FEED_STOPPED for anything more of it, the entry kept. Nobody is
 * banned for relaying it, and other feeds keep flowing.
 */
import * as assert from 'uvu/assert';
import { Feed, append, bodies, ingest, keyOf } from '../../helpers/journal.js';
import type { JournalStatus } from '../../helpers/journal.js';
import { waitFor, withMesh } from '../../helpers/mesh.js';
import { describe, rejectsWith } from '../../helpers/test.js';

const test = describe('gossip/audit', 90_000);

const FORGED_AT = 70;
const LENGTH = 150;

test('a feed with one entry signed by another key, ingested at one end of a chain of 3: every node stores it on the chain, audits it and stops the feed', async () => {
  await withMesh({ n: 3, topology: 'chain' }, async (mesh) => {
    await mesh.waitReady(30_000);
    const author = new Feed(keyOf(61));
    author.fill(FORGED_AT - 1);
    author.pushForged(keyOf(62), 'node', bodies.node(FORGED_AT));
    author.fill(LENGTH - FORGED_AT);
    assert.equal(await ingest(mesh.sup(0), author.entries), { appended: LENGTH, duplicates: 0 });

    const statusOf = (i: number) => mesh.sup(i).ask('journal', 'status') as Promise<JournalStatus>;
    await waitFor(
      async () => {
        for (const n of mesh.nodes) {
          const s = await statusOf(n.index);
          if (s.badSignatures !== 1 || (await mesh.heads(n.index))[author.did] !== LENGTH)
            return false;
        }
        return true;
      },
      30_000,
      'the feed on every node, stopped by every node’s audit',
      async () =>
        (
          await Promise.all(
            mesh.nodes.map(async (n) => {
              const s = await statusOf(n.index);
              const h = (await mesh.heads(n.index))[author.did] ?? 0;
              return `node ${n.index}: head ${h}, badSignatures ${s.badSignatures}, unaudited ${s.unaudited}`;
            }),
          )
        ).join('; '),
    );
    for (const n of mesh.nodes) {
      // Nothing more of the feed is taken anywhere; it is not an equivocation.
      await rejectsWith(
        ingest(n.sup!, [author.make('node', bodies.node(LENGTH + 1))]),
        'ERR_FEED_STOPPED',
      );
      assert.is((await statusOf(n.index)).equivocations, 0, `node ${n.index}: no proof`);
      assert.equal((await mesh.status(n.index)).bans, [], `node ${n.index} banned nobody`);
    }
    // The relays are fine: an append at one end reaches the other.
    const ack = await append(mesh.sup(0), 'after_audit', 'offer', bodies.offer('after', 8443));
    await waitFor(
      async () => ((await mesh.heads(2))[ack.author] ?? 0) >= ack.seq,
      10_000,
      'an append on node 0 reaching node 2 after the stop',
    );
  });
});

test.run();
