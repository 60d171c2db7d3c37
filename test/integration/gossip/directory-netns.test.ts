/**
 * The mesh directory across real hosts (root only: network namespaces, one
 * node process per host on its own 10.x address, nftables in each host's
 * namespace): a founder invites two nodes, each of them invites one more,
 * and within a deadline all five show the same `members`, `nodes` and
 * `services`, having found each other through their node records. An
 * outsider with a valid key is refused by every node with the closed-mesh
 * code. An expelled member is cut everywhere: its links close on every
 * node, its later entries are refused everywhere, and its grant leaves the
 * provider's kernel set.
 */
import * as assert from 'uvu/assert';
import { CLOSE } from '../../../runtime/errors.js';
import { CUT_EVIDENCE } from '../../../runtime/domain/membership.js';
import { gossipUrl, waitFor } from '../../helpers/mesh.js';
import { NetnsLan } from '../../helpers/netns.js';
import { NodeProcess } from '../../helpers/node-process.js';
import { describe, rootOnly, tempDir } from '../../helpers/test.js';

const test = describe('gossip/directory-netns', 180_000);
const skipReason = rootOnly();

const PORT = 7946;
const MEMBERS = 5;
const DIRECTORY_DEADLINE_MS = 30_000;
const EXPEL_DEADLINE_MS = 10_000;

const gossipOf = (ip: string, peers: string[] = []): Record<string, unknown> => ({
  listen: `${ip}:${PORT}`,
  peers,
  announce: true,
  discover: true,
  anti_entropy_ms: 300,
  handshake_timeout_ms: 2000,
  backoff_base_ms: 100,
  backoff_max_ms: 1000,
});
/** Real nftables in each host's namespace; the LAN is the mesh's address space. */
const CONFIG = { nft: { backend: 'nft' }, mesh: { cidrs: ['10.78.0.0/24'] } };

type Rows = { rows: Array<Record<string, unknown>> };
const ask = (n: NodeProcess, to: string, action: string, data?: unknown) =>
  n.request('ask', { to, action, data }, 30_000);
const catalog = async (n: NodeProcess, what: string) =>
  ((await ask(n, 'journal', 'catalog', { what })) as Rows).rows;

async function directoryOf(n: NodeProcess): Promise<string> {
  const members = (await catalog(n, 'members')).map((r) => [
    r.did,
    r.rights,
    r.invitedBy,
    r.expelled,
  ]);
  const nodes = (await catalog(n, 'nodes')).map((r) => [r.did, r.name, r.gossip, r.meshIp]);
  const services = (await catalog(n, 'services')).map((r) => [r.provider, r.service, r.port]);
  return JSON.stringify({ members, nodes, services });
}

async function invite(n: NodeProcess, rights: string[]): Promise<string> {
  return ((await ask(n, 'gossip', 'invite', { rights })) as { token: string }).token;
}

async function join(n: NodeProcess, token: string): Promise<void> {
  await n.request(
    'ask',
    { to: 'gossip', action: 'join', data: { token, timeoutMs: 15_000 } },
    30_000,
  );
}

const openTo = async (n: NodeProcess, did: string) =>
  (await n.status()).peers.filter((p) => p.state === 'open' && p.did === did).length;

if (skipReason) {
  console.log(`# skipping the directory-in-namespaces test: ${skipReason}`);
  test.skip(`mesh directory in network namespaces (${skipReason})`);
} else {
  test('five hosts: invites two levels deep, one directory everywhere; an outsider refused by all; an expelled member cut everywhere', async () => {
    const lan = NetnsLan.create(MEMBERS + 1, 78);
    const nodes: NodeProcess[] = [];
    try {
      nodes.push(
        ...(await Promise.all(
          lan.hosts.slice(0, MEMBERS).map((h, i) =>
            NodeProcess.spawn(`node${i}`, tempDir(`meshnode-dirns${i}-`), gossipOf(h.ip), {
              ns: h.ns,
              config: { ...CONFIG, node: { name: `n${i}` } },
            }),
          ),
        )),
      );
      const [n0, n1, n2, n3, n4] = nodes as [
        NodeProcess,
        NodeProcess,
        NodeProcess,
        NodeProcess,
        NodeProcess,
      ];
      await ask(n0, 'journal', 'found', { name: 'lab', admission: 'closed' });
      const rights = ['member.invite', 'service.offer'];
      await join(n1, await invite(n0, rights));
      await join(n2, await invite(n0, rights));
      await join(n3, await invite(n1, rights));
      await join(n4, await invite(n2, rights));
      for (const [i, n] of nodes.entries()) {
        await ask(n, 'grants', 'offer', {
          service: `svc${i}`,
          port: 8000 + i,
          proto: 'tcp',
          mode: 'auto',
          leaseSeconds: 300,
        });
      }
      const t0 = Date.now();
      await waitFor(
        async () => {
          const all = await Promise.all(nodes.map(directoryOf));
          const d = JSON.parse(all[0]!) as Record<string, unknown[]>;
          return (
            d.members!.length === MEMBERS &&
            d.nodes!.length === MEMBERS &&
            d.services!.length === MEMBERS &&
            all.every((x) => x === all[0])
          );
        },
        DIRECTORY_DEADLINE_MS,
        'the same directory on all five hosts',
        async () => (await Promise.all(nodes.map(directoryOf))).join('\n'),
        100,
      );
      console.log(
        `# directory: five hosts show the same directory ${Date.now() - t0} ms after the last offer`,
      );
      // Found through the records: n3 and n4 were only ever told of their inviters.
      await waitFor(
        async () => (await openTo(n3, n4.did)) + (await openTo(n4, n3.did)) > 0,
        DIRECTORY_DEADLINE_MS,
        'the two leaves linked by discovery',
      );

      // An outsider with a valid key, configured to dial every member.
      const outsider = await NodeProcess.spawn(
        'outsider',
        tempDir('meshnode-dirns-out-'),
        gossipOf(
          lan.hosts[MEMBERS]!.ip,
          lan.hosts.slice(0, MEMBERS).map((h) => gossipUrl(PORT, h.ip)),
        ),
        { ns: lan.hosts[MEMBERS]!.ns, config: CONFIG },
      );
      nodes.push(outsider);
      await waitFor(
        async () => {
          const st = await outsider.status();
          const closes = (
            st as unknown as { dialing: Array<{ lastClose: { code: number } | null }> }
          ).dialing;
          return (
            closes.length === MEMBERS && closes.every((d) => d.lastClose?.code === CLOSE.notAllowed)
          );
        },
        15_000,
        'every member refusing the outsider with 4003',
      );
      assert.is((await outsider.status()).peers.filter((p) => p.state === 'open').length, 0);

      // n4 subscribes to n1's service and is granted: its address is in n1's kernel set.
      // By the provider's name, as an operator would.
      const sub = (await ask(n4, 'grants', 'subscribe', { provider: 'n1', service: 'svc1' })) as {
        id: string;
      };
      await waitFor(
        async () => (await ask(n1, 'journal', 'get', { id: sub.id })) !== null,
        10_000,
        "n4's subscription on n1",
      );
      const act = (await ask(n4, 'grants', 'activate', { subscription: sub.id })) as {
        endpoint?: unknown;
      };
      assert.ok(act.endpoint, 'n4 granted');
      const n4Ip = lan.hosts[4]!.ip;
      const kernel = async () => JSON.stringify(await ask(n1, 'nft', 'list'));
      assert.match(await kernel(), n4Ip, "n4's address in n1's kernel set");

      // Expel n4 (by the founder): links close everywhere, its grant leaves the set.
      const started = Date.now();
      const r = (await ask(n0, 'journal', 'expel', { did: n4.did })) as { cut: number };
      await waitFor(
        async () => {
          for (const n of [n0, n1, n2, n3]) if ((await openTo(n, n4.did)) > 0) return false;
          return true;
        },
        EXPEL_DEADLINE_MS,
        'links to the expelled node closed on every node',
      );
      console.log(
        `# directory: links to the expelled node closed on four hosts ${Date.now() - started} ms after the expel`,
      );
      await waitFor(
        async () => !(await kernel()).includes(n4Ip),
        EXPEL_DEADLINE_MS,
        "the expelled node's grant out of n1's kernel set",
      );
      // Its later entries: written on its own node, refused by every other.
      await n4
        .append('late-1', 'offer', {
          service: 'late',
          port: 9,
          proto: 'tcp',
          mode: 'auto',
          leaseSeconds: 60,
        })
        .catch(() => undefined);
      const later = (await ask(n4, 'journal', 'range', {
        author: n4.did,
        from: r.cut + 1,
      })) as unknown[];
      for (const n of [n0, n1, n2, n3]) {
        await waitFor(
          async () => ((await n.heads())[n4.did] ?? 0) <= r.cut + CUT_EVIDENCE,
          EXPEL_DEADLINE_MS,
          `${n.name} holding n4's feed only up to its evidence window`,
        );
        // What it wrote past its cut is kept at most as evidence: shown by nobody.
        if (later.length > 0) await n.ingest(later);
        const services = await catalog(n, 'services');
        assert.not.ok(
          services.some((x) => x.provider === n4.did),
          `${n.name} lists an expelled member's offer`,
        );
      }
      const members = await catalog(n2, 'members');
      assert.ok(
        members.some(
          (m) => m.did === n4.did && (m.expelled as { cut: number } | null)?.cut === r.cut,
        ),
        'members lists n4 as expelled at its cut',
      );
    } catch (err) {
      for (const n of nodes) console.error(`--- ${n.name} log (tail)\n${n.stderr.slice(-3000)}`);
      throw err;
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      lan.destroy();
      assert.equal(lan.remaining(), [], 'every namespace removed');
    }
  });
}

test.run();
