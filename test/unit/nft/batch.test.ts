import * as assert from 'uvu/assert';
import {
  TABLE_MARK,
  elementsOf,
  emptyBatch,
  isEmpty,
  render,
  renderProbe,
} from '../../../actors/nft/batch.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/batch', 2000);

test('render: deletes, then structure, then rules (accepts inserted, drops appended), then elements', () => {
  const b = emptyBatch();
  b.deleteRules.push(7, 9);
  b.deleteChains.push('sneaky', 'other');
  b.deleteSets.push({ name: 'intruder', map: false }, { name: 'm', map: true });
  b.table = true;
  b.addSets.push({ name: 'udp_53_v4', family: 4 }, { name: 'udp_53_v6', family: 6 });
  b.addRules.push(
    { proto: 'udp', port: 53, kind: 'v4' },
    { proto: 'udp', port: 53, kind: 'v6' },
    { proto: 'udp', port: 53, kind: 'drop' },
  );
  const e = elementsOf(b, 'udp_53_v4', 4);
  e.remove.push('10.0.0.9');
  e.refresh.push(['10.0.0.1', 60_000]);
  e.add.push(['10.0.0.2', 1500]);
  elementsOf(b, 'udp_53_v6', 6).add.push(['fd00::1', 3_600_000]);
  assert.is(
    render(b, 'meshnode'),
    [
      'delete rule inet meshnode input handle 7',
      'delete rule inet meshnode input handle 9',
      'flush chain inet meshnode sneaky',
      'flush chain inet meshnode other',
      'delete chain inet meshnode sneaky',
      'delete chain inet meshnode other',
      'delete set inet meshnode intruder',
      'delete map inet meshnode m',
      `add table inet meshnode { comment "${TABLE_MARK}"; }`,
      'add chain inet meshnode input { type filter hook input priority filter; policy accept; }',
      'add set inet meshnode udp_53_v4 { type ipv4_addr; flags timeout; }',
      'add set inet meshnode udp_53_v6 { type ipv6_addr; flags timeout; }',
      'insert rule inet meshnode input ip saddr @udp_53_v4 udp dport 53 accept comment "udp_53_v4"',
      'insert rule inet meshnode input ip6 saddr @udp_53_v6 udp dport 53 accept comment "udp_53_v6"',
      'add rule inet meshnode input udp dport 53 drop comment "udp_53_drop"',
      // removed and refreshed: made present, then deleted — neither statement can fail
      'add element inet meshnode udp_53_v4 { 10.0.0.9 timeout 1s, 10.0.0.1 timeout 1s }',
      'delete element inet meshnode udp_53_v4 { 10.0.0.9, 10.0.0.1 }',
      // refreshed and new: added with their timeouts
      'add element inet meshnode udp_53_v4 { 10.0.0.1 timeout 60000ms, 10.0.0.2 timeout 1500ms }',
      'add element inet meshnode udp_53_v6 { fd00::1 timeout 3600000ms }',
      '',
    ].join('\n'),
  );
});

test('an empty batch renders to nothing', () => {
  const b = emptyBatch();
  assert.ok(isEmpty(b));
  assert.is(render(b, 'meshnode'), '');
  elementsOf(b, 'tcp_22_v4', 4);
  assert.ok(isEmpty(b), 'an element entry with nothing in it is still empty');
});

test('names and values that are not ours never reach the text (ERR_NFT_BAD_NAME)', () => {
  const bad: Array<(b: ReturnType<typeof emptyBatch>) => void> = [
    (b) => b.addSets.push({ name: 'x; flush ruleset', family: 4 }),
    (b) => b.deleteChains.push('Input'),
    (b) => b.deleteRules.push(1.5),
    (b) => b.deleteRules.push(0),
    (b) => b.addRules.push({ proto: 'tcp', port: 70000, kind: 'drop' }),
    (b) => elementsOf(b, 'tcp_22_v4', 4).add.push(['10.0.0.1', 0]),
    (b) => elementsOf(b, 'tcp_22_v4', 4).add.push(['10.0.0.1 } ; flush ruleset ; {', 1000]),
    (b) => elementsOf(b, 'tcp_22_v4', 4).remove.push('$(reboot)'),
    (b) => elementsOf(b, 'tcp_22_v4', 4).remove.push('10.0.0.1\ninclude "/etc/passwd"'),
  ];
  for (const [i, make] of bad.entries()) {
    const b = emptyBatch();
    make(b);
    try {
      render(b, 'meshnode');
      assert.unreachable(`case ${i} rendered`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_NFT_BAD_NAME', `case ${i}`);
    }
  }
  try {
    render(emptyBatch(), 'mesh node');
    assert.unreachable('bad table rendered');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_NFT_BAD_NAME');
  }
});

test('the probe deletes our rules, sets and chain (for nft -c only)', () => {
  assert.is(
    renderProbe('meshnode', [7, 8], ['tcp_22_v4', 'tcp_22_v6']),
    [
      'delete rule inet meshnode input handle 7',
      'delete rule inet meshnode input handle 8',
      'delete set inet meshnode tcp_22_v4',
      'delete set inet meshnode tcp_22_v6',
      'delete chain inet meshnode input',
      '',
    ].join('\n'),
  );
});

test.run();
