/**
 * Reconciliation diffs: only what differs is touched (never flush and
 * rebuild), the structure is repaired, foreign objects go.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { TABLE_MARK, render } from '../../../actors/nft/batch.js';
import { RECONCILE_SLACK_MS, diff } from '../../../actors/nft/diff.js';
import type { Desired } from '../../../actors/nft/diff.js';
import { parseListing } from '../../../actors/nft/listing.js';
import { TableModel } from '../../../actors/nft/model.js';
import type { Service } from '../../../runtime/protocol/nft.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/diff', 2000);

const NOW = 1_800_000_000_000;
const FIXTURE = readFileSync(
  fileURLToPath(new URL('../../../../test/fixtures/nft/listing-1.0.6.json', import.meta.url)),
  'utf8',
);

function desired(services: Service[], grants: Record<string, Record<string, number>>): Desired {
  return {
    services: new Map(services.map((s) => [`${s.proto}_${s.port}`, s])),
    grants: new Map(Object.entries(grants).map(([set, m]) => [set, new Map(Object.entries(m))])),
  };
}

/** A snapshot of the memory model holding `d` exactly (what a perfect kernel would list). */
function kernelOf(d: Desired) {
  const m = new TableModel();
  m.commit(diff(d, null, NOW).batch, NOW);
  return m.snapshot(NOW)!;
}

const TCP22 = { proto: 'tcp', port: 22 } as const;

test('nothing desired and no table: nothing to do', () => {
  const { batch, stats } = diff(desired([], {}), null, NOW);
  assert.is(render(batch, 'meshnode'), '');
  assert.is(stats.tableCreated, false);
});

test('no table: everything is created in one batch, elements with their remaining time', () => {
  const d = desired([TCP22], {
    tcp_22_v4: { '10.0.0.1': NOW + 60_000 },
    tcp_22_v6: { 'fd00::1': NOW + 1500 },
  });
  const { batch, stats } = diff(d, null, NOW);
  assert.equal(stats, {
    added: 2,
    removed: 0,
    refreshed: 0,
    unchanged: 0,
    rulesAdded: 3,
    rulesRemoved: 0,
    setsAdded: 2,
    setsRemoved: 0,
    tableCreated: true,
  });
  const text = render(batch, 'meshnode');
  assert.ok(text.startsWith(`add table inet meshnode { comment "${TABLE_MARK}"; }\n`), text);
  assert.match(text, /add element inet meshnode tcp_22_v4 \{ 10\.0\.0\.1 timeout 60000ms \}/);
  assert.match(text, /add element inet meshnode tcp_22_v6 \{ fd00::1 timeout 1500ms \}/);
  assert.not.match(text, /delete|flush/);
});

test('in sync: an empty batch, every element unchanged (within the slack)', () => {
  const d = desired([TCP22], { tcp_22_v4: { '10.0.0.1': NOW + 60_000, '10.0.0.2': NOW + 5000 } });
  const snap = kernelOf(d);
  snap.sets.get('tcp_22_v4')!.elements.set('10.0.0.1', NOW + 60_000 - RECONCILE_SLACK_MS + 1);
  const { batch, stats } = diff(d, snap, NOW);
  assert.is(render(batch, 'meshnode'), '');
  assert.is(stats.unchanged, 2);
});

test('missing added, extra removed, drifted refreshed; the rest untouched', () => {
  const d = desired([TCP22], {
    tcp_22_v4: { '10.0.0.1': NOW + 60_000, '10.0.0.2': NOW + 60_000, '10.0.0.3': NOW + 60_000 },
  });
  const snap = kernelOf(d);
  const els = snap.sets.get('tcp_22_v4')!.elements;
  els.delete('10.0.0.1');
  els.set('10.0.0.2', NOW + 5000);
  els.set('10.0.0.9', NOW + 60_000);
  const { batch, stats } = diff(d, snap, NOW);
  assert.is(
    render(batch, 'meshnode'),
    [
      'add element inet meshnode tcp_22_v4 { 10.0.0.9 timeout 1s, 10.0.0.2 timeout 1s }',
      'delete element inet meshnode tcp_22_v4 { 10.0.0.9, 10.0.0.2 }',
      'add element inet meshnode tcp_22_v4 { 10.0.0.2 timeout 60000ms, 10.0.0.1 timeout 60000ms }',
      '',
    ].join('\n'),
  );
  assert.equal([stats.added, stats.removed, stats.refreshed, stats.unchanged], [1, 1, 1, 1]);
});

test('desired grants already expired are not added', () => {
  const d = desired([TCP22], { tcp_22_v4: { '10.0.0.1': NOW } });
  assert.not.match(render(diff(d, null, NOW).batch, 'meshnode'), /10\.0\.0\.1/);
});

test('a flushed table (rules gone, sets kept): only the rules come back', () => {
  const d = desired([TCP22], { tcp_22_v4: { '10.0.0.1': NOW + 60_000 } });
  const snap = kernelOf(d);
  snap.rules = [];
  const { batch, stats } = diff(d, snap, NOW);
  assert.is(
    render(batch, 'meshnode'),
    [
      `add table inet meshnode { comment "${TABLE_MARK}"; }`,
      'add chain inet meshnode input { type filter hook input priority filter; policy accept; }',
      'insert rule inet meshnode input ip saddr @tcp_22_v4 tcp dport 22 accept comment "tcp_22_v4"',
      'insert rule inet meshnode input ip6 saddr @tcp_22_v6 tcp dport 22 accept comment "tcp_22_v6"',
      'add rule inet meshnode input tcp dport 22 drop comment "tcp_22_drop"',
      '',
    ].join('\n'),
  );
  assert.is(stats.unchanged, 1);
});

test('foreign objects are removed, a set of the wrong type is replaced with its service, withdrawn services go', () => {
  // The fixture: our tcp/22 (v4 has an element without timeout), a foreign chain,
  // an interval set, a counter, a rule without comment. Desired: tcp/22 and udp/53.
  const snap = parseListing(FIXTURE, 'meshnode', NOW);
  snap.sets.get('tcp_22_v6')!.type = 'ipv4_addr';
  const d = desired([TCP22, { proto: 'udp', port: 53 }], {
    tcp_22_v4: { '10.0.0.1': NOW + 3599_000, '10.0.0.3': NOW + 60_000 },
    tcp_22_v6: { 'fd00::1': NOW + 60_000 },
  });
  const text = render(diff(d, snap, NOW).batch, 'meshnode');
  const lines = text.trim().split('\n');
  assert.equal(lines.slice(0, 9), [
    'delete rule inet meshnode input handle 8',
    'delete rule inet meshnode input handle 7',
    'delete rule inet meshnode input handle 9',
    'delete rule inet meshnode input handle 10',
    'flush chain inet meshnode sneaky',
    'delete chain inet meshnode sneaky',
    'delete set inet meshnode intruder',
    'delete set inet meshnode tcp_22_v4',
    'delete set inet meshnode tcp_22_v6',
  ]);
  assert.ok(lines.includes('add set inet meshnode tcp_22_v6 { type ipv6_addr; flags timeout; }'));
  assert.ok(lines.includes('add set inet meshnode udp_53_v4 { type ipv4_addr; flags timeout; }'));
  assert.ok(lines.includes('add rule inet meshnode input tcp dport 22 drop comment "tcp_22_drop"'));
  assert.ok(lines.includes('add rule inet meshnode input udp dport 53 drop comment "udp_53_drop"'));
  assert.ok(
    lines.includes(
      'add element inet meshnode tcp_22_v4 { 10.0.0.1 timeout 3599000ms, 10.0.0.3 timeout 60000ms }',
    ),
    'a replaced set gets every desired element',
  );

  // Without tcp/22 desired, its rules and sets go too.
  const gone = render(
    diff(desired([{ proto: 'udp', port: 53 }], {}), parseListing(FIXTURE, 'meshnode', NOW), NOW)
      .batch,
    'meshnode',
  );
  assert.match(gone, /delete set inet meshnode tcp_22_v4\n/);
  assert.match(gone, /delete rule inet meshnode input handle 9\n/);
});

test('an element without timeout is refreshed to its lease; a drop above its accepts is moved down', () => {
  const d = desired([TCP22], { tcp_22_v4: { '10.0.0.3': NOW + 60_000 } });
  const snap = kernelOf(d);
  snap.sets.get('tcp_22_v4')!.elements.set('10.0.0.3', Infinity);
  snap.rules = [snap.rules[2]!, snap.rules[0]!, snap.rules[1]!];
  const { batch, stats } = diff(d, snap, NOW);
  const text = render(batch, 'meshnode');
  assert.is(stats.refreshed, 1);
  assert.match(text, /delete rule inet meshnode input handle \d+\n/);
  assert.match(text, /add rule inet meshnode input tcp dport 22 drop comment "tcp_22_drop"/);
  assert.is(stats.rulesAdded, 1);
});

test('a chain with the wrong policy is replaced (flushed, deleted, re-added with its rules)', () => {
  const d = desired([TCP22], {});
  const snap = kernelOf(d);
  snap.chains.set('input', { type: 'filter', hook: 'input', prio: 0, policy: 'drop' });
  const text = render(diff(d, snap, NOW).batch, 'meshnode');
  assert.match(text, /^flush chain inet meshnode input\ndelete chain inet meshnode input\n/);
  assert.match(text, /add chain inet meshnode input/);
  assert.is(text.match(/ rule /g)?.length, 3);
});

test.run();
