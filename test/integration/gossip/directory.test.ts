/**
 * The mesh directory between real nodes on loopback (TLS 1.3, real LMDB):
 * founding, invites and joins, every refusal code of the join flow (each
 * leaving nothing written on either node), closed-mesh admission with the
 * allowlist override, the catalog every node shows, and an expulsion: its
 * links close everywhere, its later entries are refused everywhere, its
 * grants leave the firewall set.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import { CUT_EVIDENCE } from '../../../runtime/domain/membership.js';
import type { Membership } from '../../../runtime/domain/membership.js';
import { CLOSE, MeshError } from '../../../runtime/errors.js';
import { keyOf } from '../../helpers/journal.js';
import { readKeyFile } from '../../../runtime/crypto/index.js';
import { RawSession } from '../../helpers/gossip-wire.js';
import { TestMesh, waitFor } from '../../helpers/mesh.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('gossip/directory', 90_000);

/** Directory nodes announce their records and follow members' records. */
const DIRECTORY = { announce: true, discover: true };
const ALL_BUT_STEER = 'member.invite,member.expel,service.offer';

interface Signed {
  token: string;
  endpoints: string[];
}
type Rows = { rows: Array<Record<string, unknown>>; next: string | null };

const found = (sup: Supervisor, admission: 'closed' | 'open' = 'closed') =>
  sup.ask('journal', 'found', { name: 'lab', admission }) as Promise<{ mesh: string }>;
const invite = (sup: Supervisor, req: Record<string, unknown> = {}) =>
  sup.ask('gossip', 'invite', req) as Promise<Signed>;
const join_ = (sup: Supervisor, token: string) =>
  sup.ask('gossip', 'join', { token, timeoutMs: 10_000 }, { timeoutMs: 20_000 }) as Promise<{
    mesh: string;
  }>;
const membership = (sup: Supervisor) => sup.ask('journal', 'membership') as Promise<Membership>;
const catalog = (sup: Supervisor, what: string) =>
  sup.ask('journal', 'catalog', { what }) as Promise<Rows>;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${(err as Error).message}`;
  }
  return 'no error';
}

/** What a node shows, without what differs by who looks (self, link state). */
async function directoryOf(sup: Supervisor): Promise<string> {
  const members = (await catalog(sup, 'members')).rows.map((r) => [r.did, r.rights, r.invitedBy]);
  const nodes = (await catalog(sup, 'nodes')).rows.map((r) => [r.did, r.name, r.gossip, r.meshIp]);
  const services = (await catalog(sup, 'services')).rows.map((r) => [
    r.provider,
    r.service,
    r.port,
  ]);
  return JSON.stringify({ members, nodes, services });
}

/** n nodes, not linked to each other: the directory links them. */
function directoryMesh(n: number, extra: Record<string, unknown> = {}): Promise<TestMesh> {
  return TestMesh.start({
    n,
    topology: 'none',
    gossip: { ...DIRECTORY, ...extra },
    // Every node is on 127.0.0.1: that is the mesh's address space here.
    config: { mesh: { cidrs: ['127.0.0.0/8'] } },
  });
}

/** The nodes' logs on a failure, with MESHNODE_TEST_LOG=info (node.log_level for test nodes). */
function dump(mesh: TestMesh): void {
  if (!process.env.MESHNODE_TEST_LOG) return;
  for (let i = 0; i < mesh.nodes.length; i++) {
    for (const l of mesh.logs(i)) {
      if (/peer|invite|join|dial|member|record|mesh/.test(l)) console.log(i, l.slice(0, 400));
    }
  }
}

test('found, invite two, each invites one more: all five show the same members, nodes and services', async () => {
  const mesh = await directoryMesh(5);
  try {
    const [a, b, c, d, e] = [0, 1, 2, 3, 4].map((i) => mesh.sup(i));
    const { mesh: id } = await found(a!);
    for (const [inviter, joiner] of [
      [a, b],
      [a, c],
      [b, d],
      [c, e],
    ] as const) {
      const { token } = await invite(inviter!, { rights: ALL_BUT_STEER.split(',') });
      const r = await join_(joiner!, token).catch((err: unknown) => {
        dump(mesh);
        throw err;
      });
      assert.is(r.mesh, id);
    }
    for (let i = 0; i < 5; i++) {
      await mesh.sup(i).ask('grants', 'offer', {
        service: `svc${i}`,
        port: 8000 + i,
        proto: 'tcp',
        mode: 'auto',
        leaseSeconds: 60,
      });
    }
    const started = Date.now();
    await waitFor(
      async () => {
        const all = await Promise.all([a, b, c, d, e].map((s) => directoryOf(s!)));
        const first = JSON.parse(all[0]!) as {
          members: unknown[];
          nodes: unknown[];
          services: unknown[];
        };
        return (
          first.members.length === 5 &&
          first.nodes.length === 5 &&
          first.services.length === 5 &&
          all.every((x) => x === all[0])
        );
      },
      30_000,
      'the same directory on all five nodes',
      async () => {
        const all = await Promise.all([a, b, c, d, e].map((s) => directoryOf(s!)));
        const links = await Promise.all(
          [0, 1, 2, 3, 4].map(async (i) => (await mesh.open(i)).length),
        );
        return all
          .map((x, i) => {
            const v = JSON.parse(x) as Record<string, unknown[]>;
            return `node ${i}: ${v.members!.length} members, ${v.nodes!.length} nodes, ${v.services!.length} services, ${links[i]} links${x === all[0] ? '' : ' (differs from node 0)'}`;
          })
          .join('; ');
      },
    );
    console.log(
      `directory: five nodes show the same directory ${Date.now() - started} ms after the last offer`,
    );
    const members = (await catalog(a!, 'members')).rows;
    const byDid = new Map(members.map((m) => [m.did, m]));
    assert.is(byDid.get(mesh.nodes[3]!.did)?.invitedBy, mesh.nodes[1]!.did, 'who invited whom');
    assert.is(byDid.get(mesh.nodes[0]!.did)?.invitedBy, null, 'the founder');

    // An outsider with a valid key and no membership: refused with the closed-mesh code by every node.
    const outsider = keyOf(9001);
    for (let i = 0; i < 5; i++) {
      const s = await RawSession.open(mesh.nodes[i]!.port, outsider);
      const closed = await s.closed;
      assert.is(closed.code, CLOSE.notAllowed, `node ${i} admitted an outsider`);
    }
  } finally {
    await mesh.stop();
  }
});

test('join refusals: each has its code, and a failed join writes nothing on either node', async () => {
  const mesh = await directoryMesh(3);
  try {
    const [a, b, c] = [0, 1, 2].map((i) => mesh.sup(i)) as [Supervisor, Supervisor, Supervisor];
    await found(a);
    const before = async () => ({
      a: (await membership(a)).members.length,
      b: (await membership(b)).mesh,
      heads: JSON.stringify(await mesh.heads(0)),
    });
    const start = await before();
    const unchanged = async (what: string) => {
      const now = await before();
      assert.equal(now, start, `${what}: something was written`);
    };

    // Expired: refused by the joiner before it dials; and by the inviter if presented anyway.
    const expired = await invite(a, { expiresMs: 1000 });
    await new Promise((r) => setTimeout(r, 1100));
    assert.is(await codeOf(join_(b, expired.token)), 'ERR_INVITE_EXPIRED');
    const raw = await RawSession.open(mesh.nodes[0]!.port, keyOf(9100), {
      hello: { invite: expired.token },
    });
    const res = await raw.take('joinRes');
    assert.is(res.code, 'ERR_INVITE_EXPIRED', 'the inviter checks expiry too');
    assert.is((await raw.closed).code, CLOSE.inviteRefused);
    await unchanged('expired');

    // Forged: a widened payload under the old signature.
    const good = await invite(a);
    const [p, body, sig] = good.token.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const widened = Buffer.from(
      JSON.stringify({ ...payload, rights: ['member.expel', 'member.invite'] }),
    ).toString('base64url');
    const forged = `${p}.${widened}.${sig}`;
    assert.is(await codeOf(join_(b, forged)), 'ERR_INVITE_FORGED');
    const raw2 = await RawSession.open(mesh.nodes[0]!.port, keyOf(9101), {
      hello: { invite: forged },
    });
    assert.is((await raw2.take('joinRes')).code, 'ERR_INVITE_FORGED');
    await unchanged('forged');

    // Bound to another DID.
    const bound = await invite(a, { for: keyOf(9102).did });
    assert.is(await codeOf(join_(b, bound.token)), 'ERR_INVITE_DID');
    const raw3 = await RawSession.open(mesh.nodes[0]!.port, keyOf(9103), {
      hello: { invite: bound.token },
    });
    assert.is((await raw3.take('joinRes')).code, 'ERR_INVITE_DID');
    await unchanged('bound');

    // Over-privileged: an inviter cannot offer rights it lacks (b joins with service.offer + member.invite).
    const limited = await invite(a, { rights: ['member.invite', 'service.offer'] });
    await join_(b, limited.token);
    assert.is(await codeOf(invite(b, { rights: ['member.expel'] })), 'ERR_INVITE_RIGHTS');

    // Reused: a token redeemed once is refused to anyone else.
    assert.is(await codeOf(join_(c, limited.token)), 'ERR_INVITE_USED');
    assert.is((await membership(c)).mesh, null, 'the refused joiner belongs to no mesh');

    // Other mesh: a node of another mesh is refused by the inviter's mesh with 4012.
    const other = await TestMesh.start({ n: 1, topology: 'none', gossip: DIRECTORY });
    try {
      await found(other.sup(0));
      const t = await invite(a);
      assert.is(await codeOf(join_(other.sup(0), t.token)), 'ERR_MESH_EXISTS');
      const raw4 = await RawSession.open(mesh.nodes[0]!.port, keyOf(9104), {
        hello: { mesh: (await membership(other.sup(0))).mesh },
      });
      assert.is((await raw4.closed).code, CLOSE.otherMesh);
    } finally {
      await other.stop();
    }
    // A token this node did not issue (another inviter's, for its own mesh): ERR_INVITE_MESH.
    const bs = await invite(b);
    const raw5 = await RawSession.open(mesh.nodes[0]!.port, keyOf(9105), {
      hello: { invite: bs.token },
    });
    assert.is((await raw5.take('joinRes')).code, 'ERR_INVITE_MESH');
  } finally {
    await mesh.stop();
  }
});

test('closed mesh: the allowlist file admits an outsider; removing it closes the link', async () => {
  const dir = tempDir('meshnode-allow-');
  const allow = join(dir, 'allow.txt');
  const friend = keyOf(9200);
  writeFileSync(allow, `# the operator's override\n${friend.did}\n`);
  const mesh = await directoryMesh(1, { allowlist: allow });
  try {
    await found(mesh.sup(0));
    const s = await RawSession.open(mesh.nodes[0]!.port, friend);
    assert.is(s.close, undefined, 'an allowlisted DID is admitted to a closed mesh');
    const stranger = await RawSession.open(mesh.nodes[0]!.port, keyOf(9201));
    assert.is((await stranger.closed).code, CLOSE.notAllowed);
    writeFileSync(allow, '# emptied\n');
    const closed = await Promise.race([
      s.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000)),
    ]);
    assert.is(closed?.code, CLOSE.notAllowed, 'removed from the allowlist: the link closes');
  } finally {
    await mesh.stop();
  }
});

test('expel: links to the expelled node close on every node, its later entries are refused everywhere, its grants end', async () => {
  const mesh = await directoryMesh(3, {});
  try {
    const [a, b, c] = [0, 1, 2].map((i) => mesh.sup(i)) as [Supervisor, Supervisor, Supervisor];
    await found(a);
    await join_(b, (await invite(a, { rights: ['service.offer'] })).token);
    await join_(c, (await invite(a, { rights: ['service.offer'] })).token);
    const bDid = mesh.nodes[1]!.did;
    const cDid = mesh.nodes[2]!.did;
    // b offers, c subscribes and is granted (all on 127.0.0.1: the records say so).
    await b.ask('grants', 'offer', {
      service: 'web',
      port: 8080,
      proto: 'tcp',
      mode: 'auto',
      leaseSeconds: 60,
    });
    await waitFor(
      async () => (await catalog(c, 'services')).rows.length === 1,
      15_000,
      'c sees the offer',
    );
    await waitFor(
      async () =>
        (await catalog(b, 'members')).rows.filter((r) => r.expelled === null).length === 3,
      15_000,
      'b knows c is a member',
    );
    const sub = (await c.ask('grants', 'subscribe', { provider: bDid, service: 'web' })) as {
      id: string;
    };
    await waitFor(
      async () => (await b.ask('journal', 'get', { id: sub.id })) !== null,
      15_000,
      'the subscription reaches b',
    );
    const act = (await c.ask('grants', 'activate', { subscription: sub.id })) as {
      endpoint?: unknown;
    };
    assert.ok(act.endpoint, 'c is granted access to b');
    const live = async () => ((await b.ask('grants', 'grants')) as { live: unknown[] }).live.length;
    assert.is(await live(), 1);
    // Every node links to c (c dialed a; b and c find each other by their records).
    await waitFor(
      async () =>
        (await mesh.open(0, cDid)).length === 1 && (await mesh.open(1, cDid)).length === 1,
      20_000,
      'a and b linked to c',
    );

    const started = Date.now();
    const r = (await a.ask('journal', 'expel', { did: cDid })) as { cut: number };
    await waitFor(
      async () =>
        (await mesh.open(0, cDid)).length === 0 && (await mesh.open(1, cDid)).length === 0,
      10_000,
      'links to the expelled node closed on every node',
    );
    console.log(
      `directory: links to an expelled node closed on every node ${Date.now() - started} ms after the expel`,
    );
    await waitFor(async () => (await live()) === 0, 10_000, "the expelled node's grant removed");
    const nft = (await b.ask('nft', 'list')) as { elements?: unknown[] };
    assert.not.match(
      JSON.stringify(nft),
      /8080.*127\.0\.0\.1|127\.0\.0\.1.*8080/,
      'kernel set still holds the grant',
    );

    // The expelled feed counts up to r.cut on every node; past it at most the
    // evidence window is kept, inert (runtime/domain/membership.ts CUT_EVIDENCE).
    const cFeed = (await c.ask('journal', 'range', { author: cDid, from: 1 })) as unknown[];
    for (const s of [a, b]) {
      const heads = (await s.ask('journal', 'heads')) as Record<string, number>;
      assert.ok(
        (heads[cDid] ?? 0) <= r.cut + CUT_EVIDENCE,
        'a node holds the expelled feed past its evidence window',
      );
    }
    // c writes on (it may not even know it was expelled): kept at most as evidence, shown by nobody.
    await c
      .ask('grants', 'offer', {
        service: 'late',
        port: 9,
        proto: 'tcp',
        mode: 'auto',
        leaseSeconds: 60,
      })
      .catch(() => {});
    const later = (await c.ask('journal', 'range', { author: cDid, from: r.cut + 1 })) as unknown[];
    if (later.length > 0) {
      for (const s of [a, b]) {
        await s.ask('journal', 'ingest', { entries: later });
        const services = (await catalog(s, 'services')).rows;
        assert.not.ok(
          services.some((x) => x.provider === cDid),
          "an expelled member's offer is listed",
        );
      }
    }
    assert.ok(cFeed.length >= r.cut);
  } catch (err) {
    dump(mesh);
    throw err;
    // And c's key can no longer connect to anyone.
    const cKey = await readKeyFile(join(mesh.nodes[2]!.dir, 'node.key'));
    for (const i of [0, 1]) {
      const s = await RawSession.open(mesh.nodes[i]!.port, cKey);
      assert.is((await s.closed).code, CLOSE.notAllowed, `node ${i} admitted the expelled key`);
    }
  } finally {
    await mesh.stop();
  }
});

test.run();
