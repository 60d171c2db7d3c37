import * as assert from 'uvu/assert';
import { parseCidr } from '../../../actors/nft/addr.js';
import { LIMITS } from '../../../runtime/protocol/nft.js';
import { Validator } from '../../../actors/nft/validate.js';
import { describe } from '../../helpers/test.js';
import { INJECTIONS } from '../../helpers/nft-cases.js';

const test = describe('nft/validate', 5000);

const v = new Validator(['10.0.0.0/8', 'fd00::/8'].map((c) => parseCidr(c)!));
const grant = { proto: 'tcp', port: 22, ip: '10.0.0.5', leaseSeconds: 60 };

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

test('a valid apply comes out canonical, with set names and leases in ms', () => {
  const out = v.apply({
    add: [grant, { proto: 'udp', port: 53, ip: 'FD00:0::7', leaseSeconds: 2 }],
    remove: [{ proto: 'tcp', port: 22, ip: '10.0.0.6' }],
    offer: [{ proto: 'tcp', port: 443 }],
  });
  assert.equal(out.add[0], {
    proto: 'tcp',
    port: 22,
    svc: 'tcp_22',
    set: 'tcp_22_v4',
    family: 4,
    ip: '10.0.0.5',
    leaseMs: 60_000,
  });
  assert.is(out.add[1]!.ip, 'fd00::7');
  assert.is(out.add[1]!.set, 'udp_53_v6');
  assert.is(out.remove[0]!.set, 'tcp_22_v4');
  assert.equal(out.offer, [{ proto: 'tcp', port: 443 }]);
  assert.equal(out.withdraw, []);
});

test('each bad value is refused with its code, naming the field', () => {
  const cases: Array<[unknown, string, string]> = [
    [null, 'ERR_NFT_BAD_REQUEST', 'apply'],
    ['add', 'ERR_NFT_BAD_REQUEST', 'apply'],
    [[grant], 'ERR_NFT_BAD_REQUEST', 'apply'],
    [{}, 'ERR_NFT_BAD_REQUEST', 'apply'],
    [{ add: grant }, 'ERR_NFT_BAD_REQUEST', 'apply.add'],
    [{ add: [grant], flush: true }, 'ERR_NFT_BAD_REQUEST', 'apply'],
    [{ add: [{ ...grant, extra: 1 }] }, 'ERR_NFT_BAD_REQUEST', 'apply.add[0]'],
    [
      { add: [{ proto: 'tcp', port: 22, ip: '10.0.0.5' }] },
      'ERR_NFT_BAD_REQUEST',
      'apply.add[0].leaseSeconds',
    ],
    [{ add: [{ ...grant, proto: 'icmp' }] }, 'ERR_NFT_BAD_PROTO', 'apply.add[0].proto'],
    [{ add: [{ ...grant, proto: 'TCP' }] }, 'ERR_NFT_BAD_PROTO', 'apply.add[0].proto'],
    [{ add: [{ ...grant, port: 0 }] }, 'ERR_NFT_BAD_PORT', 'apply.add[0].port'],
    [{ add: [{ ...grant, port: 65536 }] }, 'ERR_NFT_BAD_PORT', 'apply.add[0].port'],
    [{ add: [{ ...grant, port: 22.5 }] }, 'ERR_NFT_BAD_PORT', 'apply.add[0].port'],
    [{ add: [{ ...grant, port: '22' }] }, 'ERR_NFT_BAD_PORT', 'apply.add[0].port'],
    [{ add: [{ ...grant, port: NaN }] }, 'ERR_NFT_BAD_PORT', 'apply.add[0].port'],
    [{ add: [{ ...grant, ip: '10.0.0.1/32' }] }, 'ERR_NFT_BAD_IP', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: 167772161 }] }, 'ERR_NFT_BAD_IP', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: '192.168.1.1' }] }, 'ERR_NFT_NOT_MESH', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: '127.0.0.1' }] }, 'ERR_NFT_NOT_MESH', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: '0.0.0.0' }] }, 'ERR_NFT_NOT_MESH', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: '2001:db8::1' }] }, 'ERR_NFT_NOT_MESH', 'apply.add[0].ip'],
    [{ add: [{ ...grant, ip: '::ffff:10.0.0.1' }] }, 'ERR_NFT_NOT_MESH', 'apply.add[0].ip'],
    [{ add: [{ ...grant, leaseSeconds: 0 }] }, 'ERR_NFT_BAD_LEASE', 'apply.add[0].leaseSeconds'],
    [{ add: [{ ...grant, leaseSeconds: 1.5 }] }, 'ERR_NFT_BAD_LEASE', 'apply.add[0].leaseSeconds'],
    [{ add: [{ ...grant, leaseSeconds: -5 }] }, 'ERR_NFT_BAD_LEASE', 'apply.add[0].leaseSeconds'],
    [
      { add: [{ ...grant, leaseSeconds: LIMITS.leaseSeconds + 1 }] },
      'ERR_NFT_BAD_LEASE',
      'apply.add[0].leaseSeconds',
    ],
    [{ remove: [{ proto: 'tcp', port: 22 }] }, 'ERR_NFT_BAD_REQUEST', 'apply.remove[0].ip'],
    [
      { offer: [{ proto: 'tcp', port: 22, ip: '10.0.0.1' }] },
      'ERR_NFT_BAD_REQUEST',
      'apply.offer[0]',
    ],
    [{ add: [grant, grant] }, 'ERR_NFT_BAD_REQUEST', 'apply'],
    [
      { add: [grant], remove: [{ proto: 'tcp', port: 22, ip: '10.0.0.5' }] },
      'ERR_NFT_BAD_REQUEST',
      'apply',
    ],
    [
      { add: [grant], remove: [{ proto: 'tcp', port: 22, ip: '10.000.0.5' }] },
      'ERR_NFT_BAD_IP',
      'apply.remove[0].ip',
    ],
    [
      { offer: [{ proto: 'tcp', port: 1 }], withdraw: [{ proto: 'tcp', port: 1 }] },
      'ERR_NFT_BAD_REQUEST',
      'apply',
    ],
    [{ add: [grant], withdraw: [{ proto: 'tcp', port: 22 }] }, 'ERR_NFT_BAD_REQUEST', 'apply'],
    [{ add: Array(LIMITS.applyItems + 1).fill(grant) }, 'ERR_NFT_BAD_REQUEST', 'apply'],
  ];
  for (const [data, code, field] of cases) {
    const e = codeOf(() => v.apply(data));
    assert.is(e.code, code, `${JSON.stringify(data)?.slice(0, 120)}: ${e.message}`);
    assert.ok(e.message.startsWith(field), `"${e.message}" should name ${field}`);
  }
});

test('injection attempts in every field are refused with a code; messages stay bounded and printable', () => {
  for (const { field, value, code } of INJECTIONS) {
    const e = codeOf(() => v.apply({ add: [{ ...grant, [field]: value }] }));
    assert.is(e.code, code, `${field} = ${JSON.stringify(value).slice(0, 60)}`);
    assert.ok(e.message.length < 300, 'bounded message');
    assert.match(e.message, /^[\x20-\x7e]*$/, 'printable ASCII message');
  }
  // The field names are strings too.
  const e = codeOf(() =>
    v.apply({ add: [{ ...grant, ['ip; flush ruleset\n' + 'x'.repeat(10_000)]: 1 }] }),
  );
  assert.is(e.code, 'ERR_NFT_BAD_REQUEST');
  assert.ok(e.message.length < 200);
});

test('one bad item refuses the whole request', () => {
  const items = Array.from({ length: 50 }, (_, i) => ({ ...grant, ip: `10.0.1.${i + 1}` }));
  items[37] = { ...grant, ip: '10.0.1.38; flush ruleset' };
  assert.is(codeOf(() => v.apply({ add: items })).code, 'ERR_NFT_BAD_IP');
});

test('reconcile: expired grants skipped, duplicates merged (latest expiry), services given or named', () => {
  const now = 1_000_000_000_000;
  const out = v.reconcile(
    {
      grants: [
        { proto: 'tcp', port: 22, ip: '10.0.0.1', expiresAt: now + 5000 },
        { proto: 'tcp', port: 22, ip: '10.0.0.1', expiresAt: now + 9000 },
        { proto: 'tcp', port: 22, ip: '10.0.0.1', expiresAt: now + 7000 },
        { proto: 'tcp', port: 22, ip: '10.0.0.2', expiresAt: now },
        { proto: 'udp', port: 53, ip: 'fd00::0:1', expiresAt: now + 1 },
      ],
    },
    now,
  );
  assert.is(out.services, null);
  assert.is(out.count, 2);
  assert.is(out.expired, 1);
  assert.equal([...out.grants.get('tcp_22_v4')!], [['10.0.0.1', now + 9000]]);
  assert.equal([...out.grants.get('udp_53_v6')!], [['fd00::1', now + 1]]);
  assert.equal([...out.named.keys()].sort(), ['tcp_22', 'udp_53']);

  const withServices = v.reconcile({ grants: [], services: [{ proto: 'tcp', port: 80 }] }, now);
  assert.equal([...withServices.services!.keys()], ['tcp_80']);
});

test('reconcile refusals', () => {
  const now = Date.now();
  const g = { proto: 'tcp', port: 22, ip: '10.0.0.1', expiresAt: now + 1000 };
  const cases: Array<[unknown, string]> = [
    [{}, 'ERR_NFT_BAD_REQUEST'],
    [{ grants: {} }, 'ERR_NFT_BAD_REQUEST'],
    [{ grants: [{ ...g, leaseSeconds: 5 }] }, 'ERR_NFT_BAD_REQUEST'],
    [{ grants: [{ ...g, expiresAt: '1700000000000' }] }, 'ERR_NFT_BAD_LEASE'],
    [
      { grants: [{ ...g, expiresAt: now + (LIMITS.leaseSeconds + 10) * 1000 }] },
      'ERR_NFT_BAD_LEASE',
    ],
    [{ grants: [{ ...g, ip: '8.8.8.8' }] }, 'ERR_NFT_NOT_MESH'],
    [{ grants: [g], services: [{ proto: 'udp', port: 22 }] }, 'ERR_NFT_NOT_OFFERED'],
    [{ grants: [], services: [{ proto: 'tcp', port: '80' }] }, 'ERR_NFT_BAD_PORT'],
  ];
  for (const [data, code] of cases) {
    assert.is(codeOf(() => v.reconcile(data, now)).code, code, JSON.stringify(data));
  }
});

test.run();
