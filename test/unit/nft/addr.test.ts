import * as assert from 'uvu/assert';
import { inCidrs, parseCidr, parseIp } from '../../../actors/nft/addr.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/addr', 2000);

test('IPv4: dotted quads only, printed as given', () => {
  for (const ok of ['0.0.0.0', '10.0.0.1', '255.255.255.255', '192.168.1.10']) {
    assert.is(parseIp(ok)?.text, ok, ok);
    assert.is(parseIp(ok)?.family, 4, ok);
  }
  assert.is(parseIp('10.0.0.1')!.v4, 0x0a000001);
  assert.is(parseIp('255.255.255.255')!.v4, 0xffffffff);
  assert.is(parseIp('fd00::1')!.v6, (0xfd00n << 112n) | 1n);
});

test('IPv6: canonical RFC 5952 text (lower case, longest zero run as ::, no leading zeros)', () => {
  const cases: Array<[string, string]> = [
    ['fd00::1', 'fd00::1'],
    ['FD00:0:0::1', 'fd00::1'],
    ['fd00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fd00:a:b:c:d:e:f:0', 'fd00:a:b:c:d:e:f:0'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['fd00:00ab::', 'fd00:ab::'],
  ];
  for (const [input, text] of cases) {
    assert.is(parseIp(input)?.text, text, input);
    assert.is(parseIp(input)?.family, 6, input);
  }
});

test('anything else is not an address', () => {
  const bad = [
    '',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '10.0.0.01',
    '010.0.0.1',
    '10.0.0.256',
    '10.0.0',
    '10.0.0.1.2',
    '10.0.0.1/32',
    '1e1.0.0.1',
    '0x0a.0.0.1',
    'fd00::1%eth0',
    '[fd00::1]',
    'fd00:::1',
    'fd00::1::2',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::1',
    ':1',
    '1:',
    'fd00::10.0.0.256',
    '10.0.0.1; flush ruleset',
    '$(reboot)',
    '10.0.0.1\n',
    'ａ::1',
    '١٠.0.0.1',
    'x'.repeat(10_000),
  ];
  for (const s of bad) assert.is(parseIp(s), null, JSON.stringify(s.slice(0, 40)));
  assert.is(parseIp(42 as unknown as string), null);
});

test('CIDRs: host bits zero, length within the family; containment by family', () => {
  const mesh = ['10.0.0.0/8', 'fd00::/8'].map((c) => parseCidr(c)!);
  assert.is(mesh[0]!.text, '10.0.0.0/8');
  assert.ok(inCidrs(parseIp('10.200.3.4')!, mesh));
  assert.ok(inCidrs(parseIp('fdff::1')!, mesh));
  assert.not.ok(inCidrs(parseIp('11.0.0.1')!, mesh));
  assert.not.ok(inCidrs(parseIp('fe80::1')!, mesh));
  assert.not.ok(inCidrs(parseIp('::ffff:10.0.0.1')!, mesh), 'a v4-mapped address is IPv6');
  assert.ok(inCidrs(parseIp('1.2.3.4')!, [parseCidr('0.0.0.0/0')!]));
  assert.ok(inCidrs(parseIp('10.1.2.3')!, [parseCidr('10.1.2.3/32')!]));
  assert.not.ok(inCidrs(parseIp('10.1.2.4')!, [parseCidr('10.1.2.3/32')!]));
  for (const bad of [
    '10.0.0.1/8',
    '10.0.0.0/33',
    'fd00::/129',
    '10.0.0.0',
    '10.0.0.0/08',
    '/8',
    'x/8',
  ]) {
    assert.is(parseCidr(bad), null, bad);
  }
});

test.run();
