/**
 * Planning applies against the mirror, and the memory model that both
 * mirrors the kernel and plays it for the memory backend.
 */
import * as assert from 'uvu/assert';
import { parseCidr } from '../../../actors/nft/addr.js';
import { TABLE_MARK, render } from '../../../actors/nft/batch.js';
import { TableModel } from '../../../actors/nft/model.js';
import { conflicts, planApply, touches } from '../../../actors/nft/plan.js';
import type { Service } from '../../../runtime/protocol/nft.js';
import { Validator } from '../../../actors/nft/validate.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/plan', 2000);

const NOW = 1_800_000_000_000;
const v = new Validator(['10.0.0.0/8', 'fd00::/8'].map((c) => parseCidr(c)!));
const add = (ip: string, leaseSeconds = 60, port = 22) => ({
  proto: 'tcp',
  port,
  ip,
  leaseSeconds,
});
const ref = (ip: string, port = 22) => ({ proto: 'tcp', port, ip });
const none = new Map<string, Service>();
const nothing = new Map<string, Map<string, number>>();
/** What a kernel model holds, as the executor's known grants. */
const knownOf = (kernel: TableModel) =>
  new Map([...kernel.sets].map(([name, s]) => [name, new Map(s.elements)]));

test('a first grant offers its service: sets, rules and the element in one batch', () => {
  const p = planApply([v.apply({ add: [add('10.0.0.1')] })], new TableModel(), none, nothing, NOW);
  assert.equal(p.outcomes[0]!.offered, [{ proto: 'tcp', port: 22 }]);
  assert.equal(p.outcomes[0]!.added, 1);
  assert.is(p.outcomes[0]!.at, NOW);
  assert.is(
    render(p.batch, 'meshnode'),
    [
      `add table inet meshnode { comment "${TABLE_MARK}"; }`,
      'add chain inet meshnode input { type filter hook input priority filter; policy accept; }',
      'add set inet meshnode tcp_22_v4 { type ipv4_addr; flags timeout; }',
      'add set inet meshnode tcp_22_v6 { type ipv6_addr; flags timeout; }',
      'insert rule inet meshnode input ip saddr @tcp_22_v4 tcp dport 22 accept comment "tcp_22_v4"',
      'insert rule inet meshnode input ip6 saddr @tcp_22_v6 tcp dport 22 accept comment "tcp_22_v6"',
      'add rule inet meshnode input tcp dport 22 drop comment "tcp_22_drop"',
      'add element inet meshnode tcp_22_v4 { 10.0.0.1 timeout 60000ms }',
      '',
    ].join('\n'),
  );
  assert.equal([...p.services.keys()], ['tcp_22']);
});

test('an element the kernel has: a refresh (remove-and-add); unknown ones: a plain add', () => {
  const kernel = new TableModel();
  kernel.commit(
    planApply([v.apply({ add: [add('10.0.0.1', 10)] })], new TableModel(), none, nothing, NOW)
      .batch,
    NOW,
  );
  const mirror = TableModel.fromSnapshot(kernel.snapshot(NOW), false);
  const services = new Map([['tcp_22', { proto: 'tcp' as const, port: 22 }]]);
  const p = planApply(
    [v.apply({ add: [add('10.0.0.1', 60), add('10.0.0.2', 60)] })],
    mirror,
    services,
    knownOf(kernel),
    NOW + 1000,
  );
  assert.equal(p.outcomes[0]!.refreshed, [0], 'add[0], 10.0.0.1, was live');
  assert.is(p.outcomes[0]!.added, 1);
  const text = render(p.batch, 'meshnode');
  assert.match(
    text,
    /add element inet meshnode tcp_22_v4 \{ 10\.0\.0\.1 timeout 1s \}\ndelete element inet meshnode tcp_22_v4 \{ 10\.0\.0\.1 \}\nadd element inet meshnode tcp_22_v4 \{ 10\.0\.0\.1 timeout 60000ms, 10\.0\.0\.2 timeout 60000ms \}/,
  );
  assert.not.match(text, / rule /, 'the rules are there already');
  kernel.commit(p.batch, NOW + 1000);
  assert.is(kernel.state('tcp_22_v4', '10.0.0.1', NOW + 30_000), 'live', 'the lease restarted');
});

test('coalesced requests: the last word per address wins, each request gets its own account', () => {
  const intents = [
    v.apply({ add: [add('10.0.0.1'), add('10.0.0.2')] }),
    v.apply({ remove: [ref('10.0.0.1')] }),
    v.apply({ add: [add('10.0.0.2', 120)] }),
  ];
  const p = planApply(intents, new TableModel(), none, nothing, NOW);
  assert.is(p.outcomes[1]!.removed, 1);
  assert.equal(p.outcomes[2]!.refreshed, [0], 'added by the first request of the group');
  assert.equal(
    [...p.changes.get('tcp_22_v4')!],
    [
      ['10.0.0.1', null],
      ['10.0.0.2', NOW + 120_000],
    ],
  );
});

test('withdraw deletes the service rules (by handle) and sets; conflicts split groups', () => {
  const kernel = new TableModel();
  kernel.commit(
    planApply([v.apply({ add: [add('10.0.0.1')] })], new TableModel(), none, nothing, NOW).batch,
    NOW,
  );
  const mirror = TableModel.fromSnapshot(kernel.snapshot(NOW), false);
  const services = new Map([['tcp_22', { proto: 'tcp' as const, port: 22 }]]);
  const p = planApply(
    [v.apply({ withdraw: [{ proto: 'tcp', port: 22 }] })],
    mirror,
    services,
    knownOf(kernel),
    NOW,
  );
  const text = render(p.batch, 'meshnode');
  assert.match(
    text,
    /^delete rule inet meshnode input handle \d+\ndelete rule .*\ndelete rule .*\ndelete set inet meshnode tcp_22_v4\ndelete set inet meshnode tcp_22_v6\n/,
  );
  assert.equal(p.outcomes[0]!.withdrawn, [{ proto: 'tcp', port: 22 }]);
  assert.equal(p.droppedSets, ['tcp_22_v4', 'tcp_22_v6']);
  assert.is(p.services.size, 0);
  kernel.commit(p.batch, NOW);
  assert.equal(kernel.snapshot(NOW)!.sets.size, 0);

  const group = touches(v.apply({ add: [add('10.0.0.1')] }));
  assert.ok(conflicts(v.apply({ withdraw: [{ proto: 'tcp', port: 22 }] }), group));
  assert.not.ok(conflicts(v.apply({ withdraw: [{ proto: 'tcp', port: 23 }] }), group));
  const withdrawing = touches(v.apply({ withdraw: [{ proto: 'tcp', port: 23 }] }));
  assert.ok(conflicts(v.apply({ add: [add('10.0.0.1', 60, 23)] }), withdrawing));
});

test('memory model: refuses what nft would, all or nothing; expiry honoured', () => {
  const kernel = new TableModel();
  const first = planApply(
    [v.apply({ add: [add('10.0.0.1', 2)] })],
    new TableModel(),
    none,
    nothing,
    NOW,
  );
  kernel.commit(first.batch, NOW);
  const before = JSON.stringify([...kernel.sets.get('tcp_22_v4')!.elements]);
  const bad = planApply(
    [v.apply({ add: [add('10.0.0.5')] })],
    new TableModel(),
    none,
    nothing,
    NOW,
  );
  bad.batch.deleteRules.push(999);
  try {
    kernel.commit(bad.batch, NOW);
    assert.unreachable('committed a batch with a missing rule handle');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_NFT_FAILED');
  }
  assert.is(JSON.stringify([...kernel.sets.get('tcp_22_v4')!.elements]), before, 'nothing applied');
  assert.equal(
    [
      ...kernel
        .snapshot(NOW + 1000)!
        .sets.get('tcp_22_v4')!
        .elements.keys(),
    ],
    ['10.0.0.1'],
  );
  assert.equal(
    [
      ...kernel
        .snapshot(NOW + 2000)!
        .sets.get('tcp_22_v4')!
        .elements.keys(),
    ],
    [],
    'expired',
  );
});

test.run();
