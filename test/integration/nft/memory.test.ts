/**
 * The nft executor on its memory backend, through a real Supervisor: the
 * actor on a worker thread, a probe standing in for the grants actor (the
 * only sender `apply` trusts). The same API and behaviour as the kernel
 * backend — coalescing, refresh, expiry, reconcile, plan, refusals — with
 * nothing enforced, which it says loudly.
 */
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import type {
  ApplyResult,
  ListResult,
  PlanResult,
  ReconcileResult,
  StatusResult,
} from '../../../runtime/protocol/nft.js';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import { INJECTIONS } from '../../helpers/nft-cases.js';
import { probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe, rejectsWith, sleep } from '../../helpers/test.js';

const test = describe('nft/memory', 20_000);

const NFT = fileURLToPath(new URL('../../../actors/nft/actor.js', import.meta.url));

const input = (options: Record<string, unknown> = {}) => ({
  children: [
    {
      name: 'nft',
      module: NFT,
      options: { backend: 'memory', ...options },
      mailbox: { highWater: 16_384, concurrency: 16_384 },
    },
    probe('grants', { mailbox: { concurrency: 16_384, highWater: 16_384 } }, ['nft']),
  ],
  topology: [['grants', 'nft']],
});

/** Ask the executor as the grants actor. */
const asGrants = (sup: Supervisor, action: string, payload?: unknown) =>
  sup.ask(
    'grants',
    'forward',
    { to: 'nft', action, payload, timeoutMs: 10_000 },
    { timeoutMs: 11_000 },
  );

const apply = (sup: Supervisor, data: unknown) =>
  asGrants(sup, 'apply', data) as Promise<ApplyResult>;
const list = (sup: Supervisor) => sup.ask('nft', 'list') as Promise<ListResult>;
const ips = async (sup: Supervisor) =>
  (await list(sup)).grants.map((g) => `${g.proto}/${g.port} ${g.ip}`).sort();
const add = (ip: string, leaseSeconds = 60, port = 22) => ({
  proto: 'tcp',
  port,
  ip,
  leaseSeconds,
});

test('grant, list, status: memory backend, not enforcing, and a loud warning at start', async () => {
  await withSupervisor(input(), async (sup, records) => {
    const before = Date.now();
    const r = await apply(sup, { add: [add('10.0.0.1'), add('fd00::0:1')] });
    assert.equal([r.added, r.refreshed, r.removed], [2, [], 0]);
    assert.ok(r.at >= before && r.at <= Date.now(), 'at: when the transaction was planned');
    assert.equal(r.offered, [{ proto: 'tcp', port: 22 }]);
    assert.is(r.tx.requests, 1);
    assert.equal(await ips(sup), ['tcp/22 10.0.0.1', 'tcp/22 fd00::1']);
    const l = await list(sup);
    assert.equal(l.services, [{ proto: 'tcp', port: 22 }]);
    assert.ok(Math.abs(l.grants[0]!.expiresAt! - (Date.now() + 60_000)) < 2000);
    const st = (await sup.ask('nft', 'status')) as StatusResult;
    assert.is(st.backend, 'memory');
    assert.is(st.enforcing, false);
    assert.is(st.grants, 2);
    const warning = records.find((l) => String(l.msg).includes('NOTHING IS ENFORCED'));
    assert.ok(warning, 'the memory backend is announced');
    assert.is(warning!.level, 40, 'at warn level');
  });
});

test('who may ask what: apply only from grants; the operator reads, plans and re-checks', async () => {
  await withSupervisor(input(), async (sup) => {
    await rejectsWith(sup.ask('nft', 'apply', { add: [add('10.0.0.1')] }), 'ERR_UNTRUSTED');
    assert.equal((await list(sup)).grants, []);
    await sup.ask('nft', 'status');
    await sup.ask('nft', 'plan', { add: [add('10.0.0.1')] });
    await sup.ask('nft', 'reconcile');
    await rejectsWith(sup.ask('nft', 'reconcile', { grants: [] }), 'ERR_NFT_BAD_REQUEST');
  });
});

test('concurrent applies are coalesced into few transactions, each answered', async () => {
  await withSupervisor(input({ coalesceMs: 5 }), async (sup) => {
    const N = 500;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => apply(sup, { add: [add(`10.1.${i >> 8}.${i & 255}`)] })),
    );
    const txs = new Set(results.map((r) => r.tx.id));
    assert.ok(txs.size < N / 10, `${txs.size} transactions for ${N} requests`);
    assert.ok(results.every((r) => r.added === 1));
    assert.is((await list(sup)).grants.length, N);
  });
});

test('expiry is honoured; a refresh restarts the lease; removing an expired grant is fine', async () => {
  await withSupervisor(input(), async (sup) => {
    await apply(sup, { add: [add('10.0.0.1', 1), add('10.0.0.2', 1)] });
    const r = await apply(sup, { add: [add('10.0.0.3', 60), add('10.0.0.2', 60)] });
    assert.equal([r.added, r.refreshed], [1, [1]]);
    await sleep(1200);
    assert.equal(await ips(sup), ['tcp/22 10.0.0.2', 'tcp/22 10.0.0.3']);
    const gone = await apply(sup, { remove: [{ proto: 'tcp', port: 22, ip: '10.0.0.1' }] });
    assert.is(gone.removed, 1);
  });
});

test('injection attempts in every field, and IPs outside the mesh: refused with codes, nothing applied', async () => {
  await withSupervisor(input(), async (sup) => {
    await apply(sup, { add: [add('10.0.0.1')] });
    const before = await ips(sup);
    for (const { field, value, code } of INJECTIONS) {
      await rejectsWith(
        apply(sup, { add: [add('10.0.0.7'), { ...add('10.0.0.8'), [field]: value }] }),
        code,
      );
    }
    for (const ip of ['192.168.0.1', '127.0.0.1', '8.8.8.8', '2001:db8::1', 'fe80::1', '::1']) {
      await rejectsWith(apply(sup, { add: [add('10.0.0.7'), add(ip)] }), 'ERR_NFT_NOT_MESH');
      await rejectsWith(sup.ask('nft', 'plan', { add: [add(ip)] }), 'ERR_NFT_NOT_MESH');
    }
    await rejectsWith(
      asGrants(sup, 'reconcile', {
        grants: [
          { proto: 'tcp', port: 22, ip: '10.0.0.1; flush ruleset', expiresAt: Date.now() + 1e4 },
        ],
      }),
      'ERR_NFT_BAD_IP',
    );
    assert.equal(await ips(sup), before, 'nothing applied');
    assert.is(((await sup.ask('nft', 'status')) as StatusResult).transactions, 1);
  });
});

test('reconcile: adds missing, removes extra, keeps the rest; services withdraws; expired skipped', async () => {
  await withSupervisor(input(), async (sup) => {
    await apply(sup, { add: [add('10.0.0.1'), add('10.0.0.2'), add('10.0.0.3', 60, 80)] });
    const now = Date.now();
    const r = (await asGrants(sup, 'reconcile', {
      grants: [
        { proto: 'tcp', port: 22, ip: '10.0.0.1', expiresAt: now + 60_000 },
        { proto: 'tcp', port: 22, ip: '10.0.0.4', expiresAt: now + 60_000 },
        { proto: 'tcp', port: 22, ip: '10.0.0.5', expiresAt: now - 1 },
      ],
      services: [{ proto: 'tcp', port: 22 }],
    })) as ReconcileResult;
    assert.equal(
      [r.added, r.removed, r.unchanged, r.expired, r.setsRemoved, r.rulesRemoved],
      [1, 1, 1, 1, 2, 3],
    );
    assert.equal(await ips(sup), ['tcp/22 10.0.0.1', 'tcp/22 10.0.0.4']);
    assert.equal((await list(sup)).services, [{ proto: 'tcp', port: 22 }]);
    const again = (await sup.ask('nft', 'reconcile')) as ReconcileResult;
    assert.is(again.tx, null, 'in sync: nothing to commit');
    await rejectsWith(
      asGrants(sup, 'reconcile', {
        grants: [{ proto: 'udp', port: 22, ip: '10.0.0.1', expiresAt: now + 60_000 }],
        services: [{ proto: 'tcp', port: 22 }],
      }),
      'ERR_NFT_NOT_OFFERED',
    );
  });
});

test('plan returns the exact batch and applies nothing; withdraw removes a service with its grants', async () => {
  await withSupervisor(input(), async (sup) => {
    await apply(sup, { add: [add('10.0.0.1', 60, 8080)] });
    const p = (await sup.ask('nft', 'plan', {
      add: [add('10.0.0.2', 30, 8080)],
    })) as PlanResult;
    assert.is(p.checkedBy, 'memory');
    assert.match(
      p.batch,
      /add element inet meshnode tcp_8080_v4 \{ 10\.0\.0\.2 timeout 30000ms \}\n$/,
    );
    assert.equal(await ips(sup), ['tcp/8080 10.0.0.1']);
    const w = await apply(sup, { withdraw: [{ proto: 'tcp', port: 8080 }] });
    assert.equal(w.withdrawn, [{ proto: 'tcp', port: 8080 }]);
    const l = await list(sup);
    assert.equal([l.services, l.grants], [[], []]);
  });
});

test.run();
