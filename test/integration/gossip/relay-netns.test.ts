/**
 * The man in the middle on a network of its own (root only): three network
 * namespaces on a bridge, V on h0, N on h1, and a relay process on h2 that
 * terminates TLS with its own certificate and forwards every message between
 * N and V, the handshake included. N dials V directly too. Over TLS 1.3 the
 * relayed handshake fails on both sides (two sessions, two exporters), the
 * relay's address never appears as a peer, and the direct link is the only
 * one either node holds.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { CLOSE } from '../../../actors/gossip/peer.js';
import { gossipUrl } from '../../helpers/mesh.js';
import { NetnsLan } from '../../helpers/netns.js';
import { NodeProcess } from '../../helpers/node-process.js';
import { jsonLines } from '../../helpers/process.js';
import { describe, rootOnly, sleep, tempDir } from '../../helpers/test.js';

const test = describe('gossip/relay-netns', 90_000);
const skipReason = rootOnly();
const PORT = 7946;
const RELAY_PORT = 7947;
const RELAY_DRIVER = fileURLToPath(
  new URL('../../fixtures/gossip/relay-driver.js', import.meta.url),
);

interface Link {
  fromDialer?: number;
  fromTarget?: number;
  toTarget: number;
  toDialer: number;
}

const gossip = (ip: string, peers: string[]) => ({
  listen: `${ip}:${PORT}`,
  peers,
  discover: false,
  anti_entropy_ms: 300,
  backoff_base_ms: 200,
  backoff_max_ms: 1000,
});

if (skipReason) {
  console.log(`# skipping the relay-in-a-namespace test: ${skipReason}`);
  test.skip(`a relay in a third namespace (${skipReason})`);
} else {
  test('a TLS-terminating relay in a third namespace cannot pass the handshake either way', async () => {
    const lan = NetnsLan.create(3, 79);
    const [hv, hn, hr] = lan.hosts as [
      (typeof lan.hosts)[0],
      (typeof lan.hosts)[0],
      (typeof lan.hosts)[0],
    ];
    const nodes: NodeProcess[] = [];
    const relay = spawn(
      'ip',
      [
        'netns',
        'exec',
        hr.ns,
        process.execPath,
        RELAY_DRIVER,
        hr.ip,
        String(RELAY_PORT),
        gossipUrl(PORT, hv.ip),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      const out = jsonLines(relay);
      let taken = 0;
      const lines = {
        next: async (): Promise<unknown> => {
          const end = Date.now() + 10_000;
          while (out.lines.length <= taken) {
            if (Date.now() > end) throw new Error('the relay did not answer');
            await sleep(20);
          }
          return out.lines[taken++];
        },
      };
      const ready = (await lines.next()) as { ready: boolean };
      assert.ok(ready.ready, 'the relay listens');
      const v = await NodeProcess.spawn('v', tempDir(), gossip(hv.ip, []), {
        ns: hv.ns,
        timeoutMs: 40_000,
      });
      nodes.push(v);
      const n = await NodeProcess.spawn(
        'n',
        tempDir(),
        gossip(hn.ip, [gossipUrl(RELAY_PORT, hr.ip), gossipUrl(PORT, hv.ip)]),
        { ns: hn.ns, timeoutMs: 40_000 },
      );
      nodes.push(n);
      // Let N try the relay a few times (it redials with backoff).
      let links: Link[] = [];
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        relay.stdin!.write('links\n');
        links = ((await lines.next()) as { links: Link[] }).links;
        if (
          links.filter((l) => l.fromTarget !== undefined && l.fromDialer !== undefined).length >= 2
        )
          break;
        await sleep(300);
      }
      const tried = links.filter((l) => l.fromTarget !== undefined && l.fromDialer !== undefined);
      assert.ok(tried.length >= 1, `the relay was tried: ${JSON.stringify(links)}`);
      const seen = JSON.stringify(tried);
      // Hello passed both ways and at least one proof reached the other side,
      // which refused it (4001). Which side refuses first is timing: a side
      // that checks the relayed proof before sending its own sends no auth,
      // so "both auths through" is not asked (it failed CI under load).
      for (const l of tried) {
        assert.ok(l.toTarget >= 1 && l.toDialer >= 1, `hello went through both ways: ${seen}`);
        assert.ok(l.toTarget >= 2 || l.toDialer >= 2, `a proof went through: ${seen}`);
        assert.ok(
          l.fromTarget === CLOSE.handshake || l.fromDialer === CLOSE.handshake,
          `a side refused the relayed proof: ${seen}`,
        );
      }
      const sv = await v.status();
      const sn = await n.status();
      const openOnV = sv.peers.filter((p) => p.did === n.did && p.state === 'open') as Array<{
        address?: string;
      }>;
      const openOnN = sn.peers.filter((p) => p.did === v.did && p.state === 'open') as Array<{
        address?: string;
      }>;
      assert.is(openOnV.length, 1, 'V holds one link to N');
      assert.ok(
        !String(openOnV[0]!.address).includes(hr.ip),
        `not from the relay: ${openOnV[0]!.address}`,
      );
      assert.is(openOnN.length, 1, 'N holds one link to V');
      assert.ok(
        !String(openOnN[0]!.address).includes(hr.ip),
        `not through the relay: ${openOnN[0]!.address}`,
      );
    } finally {
      relay.stdin!.end();
      relay.kill();
      for (const node of nodes) await node.stop();
      lan.destroy();
    }
  });
}

test.run();
