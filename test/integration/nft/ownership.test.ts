/**
 * Whose table it is (actors/nft/nft-backend.ts, owner()): the executor
 * marks the table it creates with a comment and refuses a table of its name
 * that lacks the mark (ERR_NFT_FOREIGN_TABLE), leaving it untouched, unless
 * adoptTable is set. A clean stop leaves its own table and live elements in
 * place (leases end in the kernel; docs/operating.md), and the next start
 * takes it back without adopting. Root only, in private namespaces.
 */
import * as assert from 'uvu/assert';
import { NftLab } from '../../helpers/nft.js';
import { TABLE_MARK } from '../../../actors/nft/batch.js';
import { describe, rootOnly } from '../../helpers/test.js';

const test = describe('nft/ownership', 30_000);
const skipReason = rootOnly();

const OPTIONS = { backend: 'nft', meshCidrs: ['10.0.0.0/8'], checkMs: 300, reconcileMs: 60_000 };
const grant = { proto: 'tcp', port: 8080, ip: '10.0.0.7', leaseSeconds: 600 };

if (skipReason) {
  console.log(`# skipping the nft ownership tests: ${skipReason}`);
  test.skip(`nft table ownership on real nftables (${skipReason})`);
} else {
  let lab: NftLab;
  test.before(() => {
    lab = NftLab.create();
  });
  test.after(() => lab?.destroy());

  test('a table of our name that meshnode did not create is refused and left as it was', async () => {
    lab.nft(
      ['-f', '-'],
      'add table inet meshnode\nadd set inet meshnode theirs { type ipv4_addr; }\nadd element inet meshnode theirs { 192.0.2.1 }\n',
    );
    const before = lab.nft(['list', 'table', 'inet', 'meshnode']);
    let refused = '';
    try {
      const d = await lab.driver(OPTIONS);
      await d.stop();
    } catch (err) {
      refused = (err as Error).message;
    }
    assert.match(refused, /ERR_NFT_FOREIGN_TABLE/, refused.slice(0, 3000) || 'it started');
    assert.is(lab.nft(['list', 'table', 'inet', 'meshnode']), before, 'not one object changed');
  });

  test('an unmarked table holding only what an earlier meshnode made is taken back (upgrades)', async () => {
    lab.nft(['delete', 'table', 'inet', 'meshnode']);
    lab.nft(
      ['-f', '-'],
      'add table inet meshnode\nadd chain inet meshnode input { type filter hook input priority filter; policy accept; }\nadd set inet meshnode tcp_8080_v4 { type ipv4_addr; flags timeout; }\n',
    );
    const d = await lab.driver(OPTIONS);
    await d.stop();
    lab.nft(['delete', 'table', 'inet', 'meshnode']);
    // Recreate the foreign one for the adoption test below.
    lab.nft(
      ['-f', '-'],
      'add table inet meshnode\nadd set inet meshnode theirs { type ipv4_addr; }\n',
    );
  });

  test('adoptTable hands it over: the executor manages it', async () => {
    const d = await lab.driver({ ...OPTIONS, adoptTable: true });
    try {
      await d.ask('grants', 'apply', { add: [grant] });
      assert.equal(lab.elements('tcp_8080_v4'), ['10.0.0.7']);
    } finally {
      await d.stop();
    }
    lab.nft(['delete', 'table', 'inet', 'meshnode']);
  });

  test('a table the executor creates carries the mark; a clean stop leaves it and its grants; the next start takes it back', async () => {
    const d = await lab.driver(OPTIONS);
    await d.ask('grants', 'apply', { add: [grant] });
    assert.ok(lab.nft(['list', 'table', 'inet', 'meshnode']).includes(`comment "${TABLE_MARK}"`));
    await d.stop();
    assert.equal(lab.elements('tcp_8080_v4'), ['10.0.0.7'], 'the lease runs on in the kernel');
    const again = await lab.driver(OPTIONS);
    await again.stop();
  });
}

test.run();
