/**
 * Parsing `nft -j list table`: the fixture was captured from nft 1.0.6
 * (Debian 12) with our objects and foreign ones (a chain, an interval set,
 * a counter, a rule without comment, an element without timeout).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { parseListing } from '../../../actors/nft/listing.js';
import { TableModel } from '../../../actors/nft/model.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/listing', 2000);

const FIXTURE = readFileSync(
  fileURLToPath(new URL('../../../../test/fixtures/nft/listing-1.0.6.json', import.meta.url)),
  'utf8',
);
const NOW = 1_800_000_000_000;

test('sets with elements and expiries, chains, rules in chain order, other objects', () => {
  const snap = parseListing(FIXTURE, 'meshnode', NOW);
  assert.equal([...snap.chains.keys()].sort(), ['input', 'sneaky']);
  assert.equal(snap.chains.get('input'), {
    type: 'filter',
    hook: 'input',
    prio: 0,
    policy: 'accept',
  });
  assert.equal(
    snap.rules.map((r) => [r.handle, r.comment]),
    [
      [8, 'tcp_22_v6'],
      [7, 'tcp_22_v4'],
      [9, 'tcp_22_drop'],
      [10, null],
    ],
  );
  const v4 = snap.sets.get('tcp_22_v4')!;
  assert.equal(v4.flags, ['timeout']);
  assert.is(v4.type, 'ipv4_addr');
  assert.equal(
    [...v4.elements],
    [
      ['10.0.0.1', NOW + 3599_000],
      ['10.0.0.2', NOW + 89_000],
      ['10.0.0.3', Infinity],
    ],
  );
  assert.equal([...snap.sets.get('tcp_22_v6')!.elements], [['fd00::1', NOW + 599_000]]);
  const intruder = snap.sets.get('intruder')!;
  assert.equal(intruder.flags, ['interval']);
  assert.is(intruder.odd, 1, 'a prefix is not an address');
  assert.equal(snap.other, ['counter hits']);
});

test('objects of another table are ignored; broken output is ERR_NFT_FAILED', () => {
  assert.is(parseListing(FIXTURE, 'other', NOW).sets.size, 0);
  for (const bad of ['', 'not json', '{"x":1}']) {
    try {
      parseListing(bad, 'meshnode', NOW);
      assert.unreachable(bad);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_NFT_FAILED');
    }
  }
});

test('the mirror of a listing keeps only our chain, our sets of the right type, our rules', () => {
  const m = TableModel.fromSnapshot(parseListing(FIXTURE, 'meshnode', NOW));
  assert.ok(m.exists);
  assert.equal([...m.sets.keys()].sort(), ['tcp_22_v4', 'tcp_22_v6']);
  assert.equal(
    [...m.rules],
    [
      ['tcp_22_v6', 8],
      ['tcp_22_v4', 7],
      ['tcp_22_drop', 9],
    ],
  );
  assert.equal(m.handlesOf('tcp', 22)?.sort(), [7, 8, 9]);
  assert.is(m.state('tcp_22_v4', '10.0.0.2', NOW), 'live');
  assert.is(m.state('tcp_22_v4', '10.0.0.2', NOW + 100_000), 'stale');
  assert.is(m.state('tcp_22_v4', '10.0.0.9', NOW), 'absent');
});

test.run();
