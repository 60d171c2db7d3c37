/**
 * The nft executor against real nftables (root only), inside a private
 * pair of network namespaces (test/helpers/nft.ts): the executor runs in a
 * driver process in `srv`, next to a TCP service; peers connect from `cli`
 * over a veth cable, from a granted address and from one that is not.
 *
 * Grants reach the kernel set and let exactly the granted address in (IPv4
 * and IPv6); revocation and lease expiry shut it out again; an element the
 * kernel already expired does not abort a batch; the table comes back after
 * an external `flush table` or `delete table`; reconciliation touches only
 * what differs (watched with `nft monitor`); hostile input is refused with
 * nothing applied. The namespaces are removed whatever happens.
 */
import { spawn } from 'node:child_process';
import * as assert from 'uvu/assert';
import type { ApplyResult, ReconcileResult, StatusResult } from '../../../runtime/protocol/nft.js';
import { GRANTED4, GRANTED6, NftLab, OTHER4, OTHER6, SRV4, SRV6 } from '../../helpers/nft.js';
import type { Driver } from '../../helpers/nft.js';
import { INJECTIONS } from '../../helpers/nft-cases.js';
import { describe, rejectsWith, rootOnly, sleep, until } from '../../helpers/test.js';

const test = describe('nft/kernel', 30_000);
const skipReason = rootOnly();

const PORT = 8080;
/** A port that is never offered: the executor must leave its traffic alone. */
const OPEN_PORT = 8081;
const RESTORE_DEADLINE_MS = 5000;

let lab: NftLab;
let nft: Driver;

const add = (ip: string, leaseSeconds = 60, port = PORT) => ({
  proto: 'tcp',
  port,
  ip,
  leaseSeconds,
});
const ref = (ip: string, port = PORT) => ({ proto: 'tcp', port, ip });
const apply = (data: unknown) => nft.ask('grants', 'apply', data) as Promise<ApplyResult>;
const v4 = () => lab.elements(`tcp_${PORT}_v4`);
const v6 = () => lab.elements(`tcp_${PORT}_v6`);

/** The desired state the test's "grants actor" holds, handed over by reconcile. */
const desired = new Map<string, { proto: string; port: number; ip: string; expiresAt: number }>();
const reconcile = () =>
  nft.ask('grants', 'reconcile', { grants: [...desired.values()] }) as Promise<ReconcileResult>;

if (skipReason) {
  console.log(`# skipping the nft kernel tests: ${skipReason}`);
  test.skip(`nft executor on real nftables in network namespaces (${skipReason})`);
} else {
  test.before(async () => {
    lab = NftLab.create();
    nft = await lab.driver({
      backend: 'nft',
      meshCidrs: ['10.0.0.0/8', 'fd00::/8'],
      checkMs: 300,
      reconcileMs: 60_000,
    });
    await lab.listen(PORT);
    await lab.listen(OPEN_PORT);
  });

  test.after(async () => {
    await nft?.stop().catch(() => {});
    lab?.destroy();
  });

  test('before any offer everyone connects; after a grant only the granted address (IPv4 and IPv6)', async () => {
    assert.is(await lab.connect(OTHER4, SRV4, PORT), 'ok');
    const r = await apply({ add: [add(GRANTED4), add(GRANTED6)] });
    assert.equal(r.offered, [{ proto: 'tcp', port: PORT }]);
    assert.equal(v4(), [GRANTED4]);
    assert.equal(v6(), [GRANTED6]);
    const [g4, o4, g6, o6, open] = await Promise.all([
      lab.connect(GRANTED4, SRV4, PORT),
      lab.connect(OTHER4, SRV4, PORT),
      lab.connect(GRANTED6, SRV6, PORT),
      lab.connect(OTHER6, SRV6, PORT),
      lab.connect(OTHER4, SRV4, OPEN_PORT),
    ]);
    assert.equal([g4, o4, g6, o6, open], ['ok', 'timeout', 'ok', 'timeout', 'ok']);
    assert.equal(lab.list().rules, [`tcp_${PORT}_v6`, `tcp_${PORT}_v4`, `tcp_${PORT}_drop`]);
    const st = (await nft.ask('admin', 'status')) as StatusResult;
    assert.equal([st.backend, st.enforcing], ['nft', true]);
  });

  test('revoke removes the address at once; a lease ends on time by the kernel timeout', async () => {
    await apply({ remove: [ref(GRANTED4)] });
    assert.equal(v4(), []);
    assert.is(await lab.connect(GRANTED4, SRV4, PORT), 'timeout');

    await apply({ add: [add(OTHER4, 2)] });
    assert.is(await lab.connect(OTHER4, SRV4, PORT), 'ok');
    await until(() => !v4().includes(OTHER4), 4000, 'the 2 s lease to expire in the kernel');
    assert.is(await lab.connect(OTHER4, SRV4, PORT), 'timeout');
  });

  test('an element the kernel already expired does not abort a remove or refresh batch', async () => {
    await apply({ add: [add('10.0.9.1', 1), add('10.0.9.2', 1), add('10.0.9.3', 1)] });
    await until(() => v4().every((ip) => !ip.startsWith('10.0.9.')), 4000, 'leases to expire');
    // What a naive batch meets: deleting an element the kernel expired fails.
    assert.throws(
      () => lab.nft(['delete', 'element', 'inet', 'meshnode', `tcp_${PORT}_v4`, '{ 10.0.9.1 }']),
      /No such file or directory/,
    );
    const r = await apply({
      remove: [ref('10.0.9.1')],
      add: [add('10.0.9.2', 60), add('10.0.9.4', 60)],
    });
    assert.equal(r.refreshed, [], 'the executor knew 10.0.9.2 had expired');
    assert.is(r.added, 2);
    assert.equal(v4(), ['10.0.9.2', '10.0.9.4']);
    // And one deleted behind the executor's back (it still believes it is there):
    lab.nft(['delete', 'element', 'inet', 'meshnode', `tcp_${PORT}_v4`, '{ 10.0.9.4 }']);
    const again = await apply({ remove: [ref('10.0.9.4')], add: [add('10.0.9.2', 120)] });
    assert.equal(again.refreshed, [0], '10.0.9.2 was live: refreshed');
    assert.equal(v4(), ['10.0.9.2']);
    assert.ok(
      lab.list().sets.get(`tcp_${PORT}_v4`)!.get('10.0.9.2')! > 100,
      'lease refreshed to 120 s',
    );
    await apply({ remove: [ref('10.0.9.2')] });
  });

  test('reconcile touches only what differs (nft monitor): no flush, untouched elements stay untouched', async () => {
    const now = Date.now();
    for (let i = 1; i <= 50; i++) {
      desired.set(`10.0.8.${i}`, {
        proto: 'tcp',
        port: PORT,
        ip: `10.0.8.${i}`,
        expiresAt: now + 300_000,
      });
    }
    desired.set(GRANTED6, { proto: 'tcp', port: PORT, ip: GRANTED6, expiresAt: now + 300_000 });
    const first = await reconcile();
    assert.equal(
      [first.added, first.refreshed, first.removed],
      [50, 1, 0],
      'GRANTED6 gets the longer lease',
    );
    // Change the desired state a little and watch what the kernel sees.
    desired.delete('10.0.8.50');
    desired.set('10.0.8.99', {
      proto: 'tcp',
      port: PORT,
      ip: '10.0.8.99',
      expiresAt: now + 300_000,
    });
    const monitor = spawn('ip', ['netns', 'exec', lab.srv, 'nft', 'monitor']);
    let events = '';
    monitor.stdout.on('data', (d: Buffer) => (events += String(d)));
    await sleep(300);
    const r = await reconcile();
    await sleep(300);
    monitor.kill();
    assert.equal([r.added, r.removed, r.refreshed, r.unchanged], [1, 1, 0, 50]);
    const lines = events.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(lines.length > 0, 'the monitor saw the reconcile');
    for (const l of lines) {
      assert.not.match(l, /flush|delete table|delete set|delete chain|delete rule/, l);
      assert.match(l, /10\.0\.8\.(50|99) /, `only the changed elements: ${l}`);
    }
    assert.ok(v4().includes('10.0.8.99') && !v4().includes('10.0.8.50'));
  });

  test('after an external `nft flush table` the rules are back within 5 s; the elements never left', async () => {
    const before = v4();
    lab.nft(['flush', 'table', 'inet', 'meshnode']);
    assert.equal(lab.list().rules, []);
    const t0 = Date.now();
    await until(() => lab.list().rules.length === 3, RESTORE_DEADLINE_MS, 'the rules restored');
    console.log(`# rules restored ${Date.now() - t0} ms after the flush`);
    assert.equal(v4(), before);
    assert.is(await lab.connect(OTHER6, SRV6, PORT), 'timeout');
    assert.is(await lab.connect(GRANTED6, SRV6, PORT), 'ok');
  });

  test('after an external `nft delete table` the table is back within 5 s with every grant', async () => {
    const before = v4();
    lab.nft(['delete', 'table', 'inet', 'meshnode']);
    const t0 = Date.now();
    await until(
      () => {
        const l = lab.list();
        return (
          l.exists &&
          l.rules.length === 3 &&
          (l.sets.get(`tcp_${PORT}_v4`)?.size ?? 0) === before.length
        );
      },
      RESTORE_DEADLINE_MS,
      'the table restored',
    );
    console.log(`# table restored ${Date.now() - t0} ms after its deletion`);
    assert.equal(v4(), before);
    assert.equal(v6(), [GRANTED6]);
    const left = lab.list().sets.get(`tcp_${PORT}_v4`)!.get('10.0.8.1')!;
    assert.ok(left > 200 && left <= 300, `the remaining lease, not a new one (${left} s)`);
    assert.is(await lab.connect(GRANTED6, SRV6, PORT), 'ok');
    assert.is(await lab.connect(OTHER6, SRV6, PORT), 'timeout');
    const st = (await nft.ask('admin', 'status')) as StatusResult;
    assert.ok(st.restores >= 2, `restores counted (${st.restores})`);
  });

  test('an apply right after the table was deleted still lands: retried against a fresh listing', async () => {
    lab.nft(['delete', 'table', 'inet', 'meshnode']);
    const r = await apply({ add: [add('10.0.5.1', 60)] });
    assert.is(r.added, 1);
    assert.ok(v4().includes('10.0.5.1'));
    assert.ok(lab.list().rules.length === 3, 'with its rules');
    await until(() => v4().includes('10.0.8.1'), RESTORE_DEADLINE_MS, 'the rest restored');
    await apply({ remove: [ref('10.0.5.1')] });
  });

  test('injection attempts in every field and IPs outside the mesh: refused with codes, the kernel untouched', async () => {
    const before = JSON.stringify([...lab.list().sets].map(([k, m]) => [k, [...m.keys()].sort()]));
    const ruleset = lab.nft(['list', 'ruleset']).replace(/expires \S+/g, '');
    for (const { field, value, code } of INJECTIONS) {
      await rejectsWith(
        apply({ add: [add('10.0.7.1'), { ...add('10.0.7.2'), [field]: value }] }),
        code,
      );
      await rejectsWith(
        nft.ask('admin', 'plan', { add: [{ ...add('10.0.7.2'), [field]: value }] }),
        code,
      );
    }
    for (const ip of [
      '192.168.0.1',
      '127.0.0.1',
      '0.0.0.0',
      '2001:db8::1',
      'fe80::1',
      SRV4.replace('10.', '11.'),
    ]) {
      await rejectsWith(apply({ add: [add('10.0.7.1'), add(ip)] }), 'ERR_NFT_NOT_MESH');
    }
    assert.is(
      JSON.stringify([...lab.list().sets].map(([k, m]) => [k, [...m.keys()].sort()])),
      before,
    );
    assert.is(
      lab.nft(['list', 'ruleset']).replace(/expires \S+/g, ''),
      ruleset,
      'the ruleset is as it was',
    );
  });

  test('plan prints the exact batch and checks it with nft -c; nothing is committed', async () => {
    const p = (await nft.ask('admin', 'plan', {
      add: [add('10.0.6.1', 30)],
      remove: [ref('10.0.8.1')],
    })) as {
      batch: string;
      checkedBy: string;
    };
    assert.is(p.checkedBy, 'nft');
    assert.match(p.batch, /delete element inet meshnode tcp_8080_v4 \{ 10\.0\.8\.1 \}\n/);
    assert.match(
      p.batch,
      /add element inet meshnode tcp_8080_v4 \{ 10\.0\.6\.1 timeout 30000ms \}\n$/,
    );
    assert.not.ok(v4().includes('10.0.6.1'));
    assert.ok(v4().includes('10.0.8.1'));
    // The same text through nft -c by hand agrees.
    lab.nft(['-c', '-f', '-'], p.batch);
  });

  test('the namespaces are removed', async () => {
    await nft.stop();
    lab.destroy();
    assert.equal(lab.remaining(), []);
  });
}

test.run();
