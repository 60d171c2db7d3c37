/**
 * The authorizer's checks (actors/grants/checks.ts `decide`) over real
 * signatures: the consumer signs with a deterministic key (grantRequestBytes,
 * as the journal's signGrantRequest does), the journal's views and the gates
 * are fakes that record every call. One test per refusal code in the
 * documented order, the order itself (a request failing two checks gets the
 * earlier code, and later checks are never consulted), and injection
 * attempts in every string field.
 */
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import { decide, inMesh, meshBlocks } from '../../../actors/grants/checks.js';
import type {
  Decision,
  Gates,
  GrantLookup,
  Offer,
  PolicyInput,
} from '../../../actors/grants/checks.js';
import type { GrantRequest } from '../../../runtime/protocol/grants.js';
import { sigToString } from '../../../runtime/domain/codec.js';
import { grantRequestBytes, sign } from '../../../runtime/crypto/index.js';
import type { KeyPair } from '../../../runtime/crypto/index.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('grants/checks');

/** The codes in their documented order (docs/design.md §6; checks.ts). */
const ORDER = [
  'ERR_GRANT_NONCE',
  'ERR_GRANT_SIGNATURE',
  'ERR_GRANT_DID',
  'ERR_GRANT_NOT_MEMBER',
  'ERR_GRANT_SUBSCRIPTION',
  'ERR_GRANT_OFFER',
  'ERR_GRANT_NOT_APPROVED',
  'ERR_GRANT_REVOKED',
  'ERR_GRANT_RATE',
  'ERR_GRANT_POLICY',
  'ERR_GRANT_SOURCE_IP',
  'ERR_GRANT_RECORD_IP',
] as const;
type Code = (typeof ORDER)[number];

const provider = keyOf(1);
const consumer = keyOf(2);
const other = keyOf(3);

const SUB = fakeId(0x5b);
const OFFER_ID = fakeId(0x0f);
const APPROVAL_ID = fakeId(0xa9);
const MESH = meshBlocks(['10.0.0.0/8', 'fd00::/8']);
const IN_MESH_IP = '10.1.2.3';

/** The journal's views and the gates, as plain data; every call is recorded. */
class World {
  subs = new Map<string, { subscriber: string; provider: string; service: string }>([
    [SUB, { subscriber: consumer.did, provider: provider.did, service: 'web' }],
  ]);
  offers = new Map<string, Offer>([
    [
      'web',
      { id: OFFER_ID, service: 'web', port: 443, proto: 'tcp', mode: 'manual', leaseSeconds: 600 },
    ],
  ]);
  /** `${target} ${by}` */
  revocations = new Set<string>();
  /** Subscriptions whose grant the provider revoked. */
  revokedGrants = new Set<string>();
  approvals = new Map<string, string>([[SUB, APPROVAL_ID]]);
  /** nonce → the peer it was issued to (consumed at first use, like NonceBook). */
  nonces = new Map<string, string>();
  rateOk = true;
  /** DIDs that count in the mesh (membership); everyone when null (an open mesh). */
  members: Set<string> | null = null;
  /** A node record's mesh IPs per DID. */
  records = new Map<string, string[]>();
  policy: (input: PolicyInput) => Promise<{ allow: boolean; reason: string }> = async () => ({
    allow: true,
    reason: 'ok',
  });
  readonly calls: string[] = [];
  readonly policyInputs: PolicyInput[] = [];

  issue(peer = consumer.did): string {
    const n = randomBytes(32).toString('base64url');
    this.nonces.set(n, peer);
    return n;
  }

  lookup(): GrantLookup {
    return {
      me: provider.did,
      subscription: async (id) => {
        this.calls.push(`subscription ${id.slice(0, 80)}`);
        return this.subs.get(id);
      },
      offer: async (service) => {
        this.calls.push(`offer ${service.slice(0, 80)}`);
        return this.offers.get(service);
      },
      revoked: async (target, by) => {
        this.calls.push(`revoked ${target} ${by}`);
        return this.revocations.has(`${target} ${by}`);
      },
      approval: async (subscription) => {
        this.calls.push(`approval ${subscription}`);
        return this.approvals.get(subscription);
      },
      grantRevoked: async (subscription) => {
        this.calls.push(`revoked grant of ${subscription}`);
        return this.revokedGrants.has(subscription);
      },
      counts: async (did) => {
        this.calls.push(`counts ${did}`);
        return this.members === null || this.members.has(did);
      },
      recordIps: async (did) => {
        this.calls.push(`record ${did}`);
        return this.records.get(did);
      },
    };
  }

  gates(): Gates {
    return {
      nonce: (nonce, peer) => {
        this.calls.push('nonce');
        const issuedTo = this.nonces.get(nonce);
        this.nonces.delete(nonce);
        return issuedTo === peer;
      },
      rate: (subscriber) => {
        this.calls.push(`rate ${subscriber}`);
        return this.rateOk;
      },
      policy: (input) => {
        this.calls.push('policy');
        this.policyInputs.push(input);
        return this.policy(input);
      },
    };
  }

  /**
   * Calls that read the journal's views by what the request says (not the
   * gates, nor the membership of the DID the link authenticated).
   */
  get lookups(): string[] {
    return this.calls.filter(
      (c) => !['nonce', 'policy'].includes(c) && !c.startsWith('rate') && !c.startsWith('counts'),
    );
  }
}

/** A request for SUB signed by `key` (the consumer unless told) over a fresh nonce. */
function signed(
  w: World,
  fields: Partial<Omit<GrantRequest, 'sig'>> = {},
  key: KeyPair = consumer,
): GrantRequest {
  const req = {
    did: key.did,
    service: 'web',
    subscription: SUB,
    nonce: fields.nonce ?? w.issue(),
    ...fields,
  };
  return { ...req, sig: sigToString(sign(key, grantRequestBytes(req))) };
}

function run(
  w: World,
  req: GrantRequest,
  seen: Partial<{ peerDid: string; sourceIp: string }> = {},
): Promise<Decision> {
  return decide(
    req,
    { peerDid: consumer.did, sourceIp: IN_MESH_IP, ...seen },
    w.lookup(),
    w.gates(),
    MESH,
  );
}

function refused(d: Decision, code: Code, what: string): void {
  assert.is(d.allow, false, `${what}: expected ${code}, but it was allowed`);
  if (!d.allow) assert.is(d.code, code, `${what}: ${d.reason}`);
}

async function codeOf(w: World, req: GrantRequest, seen = {}): Promise<string> {
  const d = await run(w, req, seen);
  return d.allow ? 'allowed' : d.code;
}

// ---------------------------------------------------------------------------
// Allowed

test('a signed request for an approved subscription is allowed with the offer', async () => {
  const w = new World();
  const d = await run(w, signed(w));
  assert.is(d.allow, true);
  if (d.allow) {
    assert.is(d.offer.id, OFFER_ID);
    assert.is(d.offer.port, 443);
  }
  assert.equal(w.policyInputs, [
    {
      subscriber: consumer.did,
      service: 'web',
      subscription: SUB,
      sourceIp: IN_MESH_IP,
      port: 443,
      proto: 'tcp',
    },
  ]);
});

test('an auto offer is standing consent: allowed without an approval, none looked up', async () => {
  const w = new World();
  w.offers.get('web')!.mode = 'auto';
  w.approvals.clear();
  const d = await run(w, signed(w));
  assert.is(d.allow, true);
  assert.not.ok(
    w.calls.some((c) => c.startsWith('approval')),
    'no approval lookup for an auto offer',
  );
});

test('an IPv6 source inside the mesh is allowed', async () => {
  const w = new World();
  assert.is(await codeOf(w, signed(w), { sourceIp: 'fd00::1:2' }), 'allowed');
});

// ---------------------------------------------------------------------------
// 1 ERR_GRANT_NONCE

test('ERR_GRANT_NONCE: a nonce the provider never issued', async () => {
  const w = new World();
  const req = signed(w, { nonce: randomBytes(32).toString('base64url') });
  refused(await run(w, req), 'ERR_GRANT_NONCE', 'unknown nonce');
  assert.equal(w.lookups, [], 'no view is read for a bad nonce');
});

test('ERR_GRANT_NONCE: a used nonce (the same signed request twice)', async () => {
  const w = new World();
  const req = signed(w);
  assert.is(await codeOf(w, req), 'allowed');
  refused(await run(w, req), 'ERR_GRANT_NONCE', 'replay');
});

test('ERR_GRANT_NONCE: a nonce issued to another peer', async () => {
  const w = new World();
  const req = signed(w, { nonce: w.issue(other.did) });
  refused(await run(w, req), 'ERR_GRANT_NONCE', "another peer's nonce");
});

// ---------------------------------------------------------------------------
// 2 ERR_GRANT_SIGNATURE

test('ERR_GRANT_SIGNATURE: signed by a key other than the request DID', async () => {
  const w = new World();
  const fields = { did: consumer.did, service: 'web', subscription: SUB, nonce: w.issue() };
  const req = { ...fields, sig: sigToString(sign(other, grantRequestBytes(fields))) };
  refused(await run(w, req), 'ERR_GRANT_SIGNATURE', 'wrong key');
  assert.equal(w.lookups, []);
});

test('ERR_GRANT_SIGNATURE: each signed field changed after signing', async () => {
  for (const [field, value] of [
    ['service', 'db'],
    ['subscription', fakeId(0x77)],
    ['did', other.did],
  ] as const) {
    const w = new World();
    const req = { ...signed(w), [field]: value };
    refused(await run(w, req), 'ERR_GRANT_SIGNATURE', `${field} changed`);
    assert.equal(w.lookups, [], `${field}: no view read`);
  }
});

test('ERR_GRANT_SIGNATURE: a DID that is not a did:key, and a sig that is not one', async () => {
  for (const [label, patch] of [
    ['did:web', { did: 'did:web:example.com' }],
    ['empty sig', { sig: '' }],
    ['short sig', { sig: 'AAAA' }],
    ['zero sig', { sig: 'A'.repeat(86) }],
  ] as const) {
    const w = new World();
    refused(await run(w, { ...signed(w), ...patch }), 'ERR_GRANT_SIGNATURE', label);
  }
});

test('ERR_GRANT_SIGNATURE: a valid signature in a non-canonical encoding', async () => {
  // Node's base64url decoder skips characters outside the alphabet: these all decode to the
  // consumer's valid signature, and none is a signature as the wire format writes it.
  for (const [label, patch] of [
    ['trailing newline', (s: string) => `${s}\n`],
    ['padding', (s: string) => `${s}==`],
    ['inner space', (s: string) => `${s.slice(0, 40)} ${s.slice(40)}`],
    ['standard base64', (s: string) => Buffer.from(s, 'base64url').toString('base64')],
  ] as const) {
    const w = new World();
    const req = signed(w);
    const variant = patch(req.sig);
    assert.is.not(variant, req.sig);
    refused(await run(w, { ...req, sig: variant }), 'ERR_GRANT_SIGNATURE', label);
  }
});

test('ERR_GRANT_SIGNATURE: fields that are not strings are refused, never thrown', async () => {
  for (const field of ['did', 'service', 'subscription', 'sig'] as const) {
    for (const value of [42, null, undefined, { toString: () => 'web' }, ['web'], true]) {
      const w = new World();
      const req = { ...signed(w), [field]: value } as unknown as GrantRequest;
      refused(await run(w, req), 'ERR_GRANT_SIGNATURE', `${field} = ${String(value)}`);
      assert.equal(w.lookups, []);
    }
  }
});

// ---------------------------------------------------------------------------
// 3 ERR_GRANT_DID

test('ERR_GRANT_DID: a request validly signed by a DID other than the link peer', async () => {
  const w = new World();
  // `other` signs its own request correctly, over a nonce issued to the link's peer.
  const req = signed(w, {}, other);
  refused(await run(w, req), 'ERR_GRANT_DID', 'relayed request');
  assert.equal(w.lookups, []);
});

// ---------------------------------------------------------------------------
// 4 ERR_GRANT_SUBSCRIPTION

test('ERR_GRANT_SUBSCRIPTION: an unknown subscription id', async () => {
  const w = new World();
  refused(
    await run(w, signed(w, { subscription: fakeId(0x99) })),
    'ERR_GRANT_SUBSCRIPTION',
    'unknown',
  );
  assert.not.ok(
    w.calls.some((c) => c.startsWith('offer')),
    'the offer is not looked up',
  );
});

test("ERR_GRANT_SUBSCRIPTION: another subscriber's subscription", async () => {
  const w = new World();
  const theirs = fakeId(0x31);
  w.subs.set(theirs, { subscriber: other.did, provider: provider.did, service: 'web' });
  w.approvals.set(theirs, fakeId(0x32));
  refused(
    await run(w, signed(w, { subscription: theirs })),
    'ERR_GRANT_SUBSCRIPTION',
    "other subscriber's",
  );
});

test('ERR_GRANT_SUBSCRIPTION: a subscription to another provider', async () => {
  const w = new World();
  w.subs.get(SUB)!.provider = other.did;
  refused(await run(w, signed(w)), 'ERR_GRANT_SUBSCRIPTION', 'other provider');
});

test('ERR_GRANT_SUBSCRIPTION: a subscription for another service than requested', async () => {
  const w = new World();
  w.offers.set('db', { ...w.offers.get('web')!, id: fakeId(0xdb), service: 'db', port: 5432 });
  refused(await run(w, signed(w, { service: 'db' })), 'ERR_GRANT_SUBSCRIPTION', 'other service');
});

// ---------------------------------------------------------------------------
// 5 ERR_GRANT_OFFER

test('ERR_GRANT_OFFER: the service is not offered', async () => {
  const w = new World();
  w.offers.clear();
  refused(await run(w, signed(w)), 'ERR_GRANT_OFFER', 'no offer');
});

test('ERR_GRANT_OFFER: the offer was withdrawn (revoked by us)', async () => {
  const w = new World();
  w.revocations.add(`${OFFER_ID} ${provider.did}`);
  refused(await run(w, signed(w)), 'ERR_GRANT_OFFER', 'withdrawn');
});

test('a revoke of our offer by another author does not withdraw it', async () => {
  const w = new World();
  w.revocations.add(`${OFFER_ID} ${consumer.did}`);
  assert.is(await codeOf(w, signed(w)), 'allowed');
});

// ---------------------------------------------------------------------------
// 6 ERR_GRANT_NOT_APPROVED

test('ERR_GRANT_NOT_APPROVED: a manual offer without an approval', async () => {
  const w = new World();
  w.approvals.clear();
  refused(await run(w, signed(w)), 'ERR_GRANT_NOT_APPROVED', 'no approval');
});

test('ERR_GRANT_NOT_APPROVED: a manual offer whose approval we revoked', async () => {
  const w = new World();
  w.revocations.add(`${APPROVAL_ID} ${provider.did}`);
  refused(await run(w, signed(w)), 'ERR_GRANT_NOT_APPROVED', 'approval revoked');
});

// ---------------------------------------------------------------------------
// 7 ERR_GRANT_REVOKED

test('ERR_GRANT_REVOKED: the subscriber revoked its subscription', async () => {
  const w = new World();
  w.revocations.add(`${SUB} ${consumer.did}`);
  refused(await run(w, signed(w)), 'ERR_GRANT_REVOKED', 'subscription revoked');
  assert.not.ok(
    w.calls.some((c) => c.startsWith('rate')),
    'no rate token is taken',
  );
});

test('ERR_GRANT_REVOKED: applies to auto offers too', async () => {
  const w = new World();
  w.offers.get('web')!.mode = 'auto';
  w.revocations.add(`${SUB} ${consumer.did}`);
  refused(await run(w, signed(w)), 'ERR_GRANT_REVOKED', 'auto, subscription revoked');
});

test("ERR_GRANT_REVOKED: a grant we revoked ends the subscription's access (no re-grant on renewal)", async () => {
  const w = new World();
  w.offers.get('web')!.mode = 'auto';
  w.revokedGrants.add(SUB);
  refused(await run(w, signed(w)), 'ERR_GRANT_REVOKED', 'provider revoked the grant');
});

// ---------------------------------------------------------------------------
// 8 ERR_GRANT_RATE

test('ERR_GRANT_RATE: the rate gate refuses; the policy is not consulted', async () => {
  const w = new World();
  w.rateOk = false;
  refused(await run(w, signed(w)), 'ERR_GRANT_RATE', 'rate');
  assert.ok(w.calls.includes(`rate ${consumer.did}`), 'the rate is keyed by the subscriber');
  assert.not.ok(w.calls.includes('policy'));
});

// ---------------------------------------------------------------------------
// 9 ERR_GRANT_POLICY

test('ERR_GRANT_POLICY: the policy denies', async () => {
  const w = new World();
  w.policy = async () => ({ allow: false, reason: 'office hours only' });
  refused(await run(w, signed(w)), 'ERR_GRANT_POLICY', 'deny');
});

test('ERR_GRANT_POLICY: a policy that fails or answers nonsense denies', async () => {
  const cases: Array<[string, () => Promise<{ allow: boolean; reason: string }>]> = [
    ['throws', async () => Promise.reject(new Error('sandbox crashed'))],
    ['undefined', async () => undefined as unknown as { allow: boolean; reason: string }],
    ['truthy non-boolean', async () => ({ allow: 'yes' as unknown as boolean, reason: '' })],
  ];
  for (const [label, policy] of cases) {
    const w = new World();
    w.policy = policy;
    refused(await run(w, signed(w)), 'ERR_GRANT_POLICY', label);
  }
});

// ---------------------------------------------------------------------------
// 10 ERR_GRANT_SOURCE_IP

test('ERR_GRANT_SOURCE_IP: IPv4 and IPv6 sources outside the mesh CIDRs', async () => {
  for (const ip of ['11.0.0.1', '192.168.1.10', '127.0.0.1', '2001:db8::1', 'fe80::1', '::1']) {
    const w = new World();
    refused(await run(w, signed(w), { sourceIp: ip }), 'ERR_GRANT_SOURCE_IP', ip);
  }
});

test('ERR_GRANT_SOURCE_IP: an IPv6 zone id, even on an address inside the mesh', async () => {
  for (const ip of ['fd00::1%eth0', 'fd00::1%25eth0', 'fd00::1%0']) {
    const w = new World();
    refused(await run(w, signed(w), { sourceIp: ip }), 'ERR_GRANT_SOURCE_IP', ip);
  }
});

test('ERR_GRANT_SOURCE_IP: garbage in place of an address', async () => {
  for (const ip of [
    '',
    'localhost',
    '10.0.0.1; flush ruleset',
    '10.0.0.1\n',
    ' 10.0.0.1',
    '010.0.0.1',
    '10.0.0.1/8',
    '10.0.0.256',
    '$(nft flush ruleset)',
    '１０.0.0.1',
    'x'.repeat(10_000),
  ]) {
    const w = new World();
    refused(
      await run(w, signed(w), { sourceIp: ip }),
      'ERR_GRANT_SOURCE_IP',
      JSON.stringify(ip.slice(0, 40)),
    );
  }
});

test('inMesh: CIDR edges for both families', () => {
  const mesh = meshBlocks(['10.0.0.0/8', 'fd00::/8', '192.168.7.0/24']);
  const cases: Array<[string, boolean]> = [
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['9.255.255.255', false],
    ['11.0.0.0', false],
    ['192.168.7.1', true],
    ['192.168.8.1', false],
    ['fd00::', true],
    ['fdff:ffff::1', true],
    ['fe00::1', false],
    ['fc00::1', false],
  ];
  for (const [ip, expect] of cases) assert.is(inMesh(mesh, ip), expect, ip);
});

// ---------------------------------------------------------------------------
// 4 ERR_GRANT_NOT_MEMBER, 12 ERR_GRANT_RECORD_IP

test('ERR_GRANT_NOT_MEMBER: a closed mesh refuses a subscriber that is not a member', async () => {
  const w = new World();
  w.members = new Set([provider.did]);
  refused(await run(w, signed(w)), 'ERR_GRANT_NOT_MEMBER', 'outsider');
  w.members.add(consumer.did);
  assert.ok((await run(w, signed(w))).allow, 'a member is granted');
});

test("ERR_GRANT_RECORD_IP: a source that is not the subscriber's recorded mesh IP", async () => {
  const w = new World();
  w.records.set(consumer.did, ['10.9.9.9']);
  refused(await run(w, signed(w), { sourceIp: IN_MESH_IP }), 'ERR_GRANT_RECORD_IP', 'other IP');
  w.records.set(consumer.did, [IN_MESH_IP]);
  assert.ok(
    (await run(w, signed(w), { sourceIp: IN_MESH_IP })).allow,
    'the recorded IP is granted',
  );
});

test('an offer with anySource grants a NATed source its record does not list', async () => {
  const w = new World();
  w.records.set(consumer.did, ['10.9.9.9']);
  w.offers.get('web')!.anySource = true;
  assert.ok((await run(w, signed(w), { sourceIp: IN_MESH_IP })).allow);
});

test('no node record: the observed source is all there is to check', async () => {
  const w = new World();
  assert.ok((await run(w, signed(w), { sourceIp: IN_MESH_IP })).allow);
});

// ---------------------------------------------------------------------------
// Order

/**
 * Ways to make a request fail exactly one check; applying two of them must
 * give the earlier code. Each returns the request to send (the World may be
 * changed) and the source IP to present.
 */
type Breaker = (w: World, fields: Partial<GrantRequest>) => { seen?: Record<string, string> };
const BREAK: Record<Code, Breaker> = {
  ERR_GRANT_NONCE: (_w, f) => {
    f.nonce = randomBytes(32).toString('base64url');
    return {};
  },
  ERR_GRANT_SIGNATURE: (_w, f) => {
    f.sig = 'A'.repeat(86);
    return {};
  },
  ERR_GRANT_DID: () => ({ seen: { peerDid: other.did } }),
  ERR_GRANT_NOT_MEMBER: (w) => {
    w.members = new Set([provider.did]);
    return {};
  },
  ERR_GRANT_SUBSCRIPTION: (w) => {
    w.subs.get(SUB)!.provider = other.did;
    return {};
  },
  ERR_GRANT_OFFER: (w) => {
    w.revocations.add(`${OFFER_ID} ${provider.did}`);
    return {};
  },
  ERR_GRANT_NOT_APPROVED: (w) => {
    w.approvals.clear();
    return {};
  },
  ERR_GRANT_REVOKED: (w) => {
    w.revocations.add(`${SUB} ${consumer.did}`);
    return {};
  },
  ERR_GRANT_RATE: (w) => {
    w.rateOk = false;
    return {};
  },
  ERR_GRANT_POLICY: (w) => {
    w.policy = async () => ({ allow: false, reason: 'no' });
    return {};
  },
  ERR_GRANT_SOURCE_IP: () => ({ seen: { sourceIp: '192.0.2.1' } }),
  ERR_GRANT_RECORD_IP: (w) => {
    w.records.set(consumer.did, ['10.9.9.9']);
    return {};
  },
};

/** Build a request broken by `codes`; DID breaks need the nonce issued to the claimed peer. */
async function decideBroken(codes: Code[]): Promise<{ d: Decision; w: World }> {
  const w = new World();
  const fields: Partial<GrantRequest> = {};
  let seen: Record<string, string> = {};
  for (const c of codes) seen = { ...seen, ...BREAK[c](w, fields).seen };
  const peer = seen.peerDid ?? consumer.did;
  const base = signed(w, { nonce: w.issue(peer) });
  const req = { ...base, ...fields };
  return { d: await run(w, req, seen), w };
}

test('each breaker alone gives its own code', async () => {
  for (const code of ORDER) {
    const { d } = await decideBroken([code]);
    refused(d, code, `${code} alone`);
  }
});

test('two failing checks: the earlier code wins, for every pair', async () => {
  for (let i = 0; i < ORDER.length; i++) {
    for (let j = i + 1; j < ORDER.length; j++) {
      const { d } = await decideBroken([ORDER[i]!, ORDER[j]!]);
      refused(d, ORDER[i]!, `${ORDER[i]} + ${ORDER[j]}`);
    }
  }
});

test('every check failing: ERR_GRANT_NONCE, and nothing else is consulted', async () => {
  const { d, w } = await decideBroken([...ORDER]);
  refused(d, 'ERR_GRANT_NONCE', 'all broken');
  assert.equal(w.calls, ['nonce']);
});

test('a refusal stops the checks: later lookups and gates are never consulted', async () => {
  // Each code's refusal, and the last call it may have made.
  const lastCall: Record<Code, (c: string) => boolean> = {
    ERR_GRANT_NONCE: (c) => c === 'nonce',
    ERR_GRANT_SIGNATURE: (c) => c === 'nonce',
    ERR_GRANT_DID: (c) => c === 'nonce',
    ERR_GRANT_NOT_MEMBER: (c) => c.startsWith('counts'),
    ERR_GRANT_SUBSCRIPTION: (c) => c.startsWith('subscription'),
    ERR_GRANT_OFFER: (c) => c.startsWith('revoked'),
    ERR_GRANT_NOT_APPROVED: (c) => c.startsWith('approval'),
    ERR_GRANT_REVOKED: (c) => c.startsWith('revoked'),
    ERR_GRANT_RATE: (c) => c.startsWith('rate'),
    ERR_GRANT_POLICY: (c) => c === 'policy',
    ERR_GRANT_SOURCE_IP: (c) => c === 'policy',
    ERR_GRANT_RECORD_IP: (c) => c.startsWith('record'),
  };
  for (const code of ORDER) {
    const { d, w } = await decideBroken([code]);
    refused(d, code, code);
    assert.ok(lastCall[code](w.calls.at(-1)!), `${code}: last call was ${w.calls.at(-1)}`);
  }
});

// ---------------------------------------------------------------------------
// Injection attempts

const PAYLOADS: Array<[string, string]> = [
  ['nft command', '; flush ruleset'],
  ['shell substitution', '$(nft flush ruleset)'],
  ['backticks', '`rm -rf /`'],
  ['newline', '\nadd rule inet meshnode input accept'],
  ['CRLF', '\r\n'],
  ['NUL', '\u0000'],
  ['JSON', '","ip":"0.0.0.0/0'],
  ['unicode lookalike', 'wеb'],
  ['right-to-left override', '\u202eweb'],
  ['emoji', '🔥'],
  ['10 kB', 'x'.repeat(10_000)],
];

test('injection in any signed field, tampered after signing: ERR_GRANT_SIGNATURE, no view read', async () => {
  for (const field of ['did', 'service', 'subscription'] as const) {
    for (const [label, payload] of PAYLOADS) {
      for (const mode of ['replace', 'append']) {
        const w = new World();
        const req = signed(w);
        const value = mode === 'replace' ? payload : req[field] + payload;
        refused(
          await run(w, { ...req, [field]: value }),
          'ERR_GRANT_SIGNATURE',
          `${field} ${mode} ${label}`,
        );
        assert.equal(w.lookups, [], `${field} ${mode} ${label}: no view read`);
        assert.not.ok(w.calls.includes('policy'));
      }
    }
  }
});

test('injection in the sig field: ERR_GRANT_SIGNATURE, no view read', async () => {
  for (const [label, payload] of PAYLOADS) {
    for (const mode of ['replace', 'append', 'prepend']) {
      const w = new World();
      const req = signed(w);
      const sig =
        mode === 'replace' ? payload : mode === 'append' ? req.sig + payload : payload + req.sig;
      refused(await run(w, { ...req, sig }), 'ERR_GRANT_SIGNATURE', `sig ${mode} ${label}`);
      assert.equal(w.lookups, []);
    }
  }
});

test('injection in the nonce field: ERR_GRANT_NONCE, nothing else consulted', async () => {
  for (const [label, payload] of PAYLOADS) {
    for (const mode of ['replace', 'append']) {
      const w = new World();
      const nonce = w.issue();
      const req = signed(w, { nonce: mode === 'replace' ? payload : nonce + payload });
      refused(await run(w, req), 'ERR_GRANT_NONCE', `nonce ${mode} ${label}`);
      assert.equal(w.calls, ['nonce']);
    }
  }
});

test('injection signed by the consumer itself: refused before any offer is looked up', async () => {
  // A hostile but authenticated consumer signs whatever it likes: the signature holds,
  // and the subscription check must refuse without the strings reaching further.
  for (const [label, payload] of PAYLOADS) {
    for (const field of ['service', 'subscription'] as const) {
      for (const mode of ['replace', 'append']) {
        const w = new World();
        const value = mode === 'replace' ? payload : (field === 'service' ? 'web' : SUB) + payload;
        const d = await run(w, signed(w, { [field]: value }));
        refused(d, 'ERR_GRANT_SUBSCRIPTION', `signed ${field} ${mode} ${label}`);
        assert.not.ok(
          w.calls.some((c) => c.startsWith('offer') || c.startsWith('rate') || c === 'policy'),
          `${field} ${mode} ${label}: ${w.calls.join(', ')}`,
        );
        if (field === 'subscription') {
          assert.equal(w.lookups, [], `${label}: a malformed subscription id reads no view`);
        }
      }
    }
  }
});

test('injection in the DID, signed by the consumer: ERR_GRANT_SIGNATURE', async () => {
  for (const [label, payload] of PAYLOADS) {
    const w = new World();
    const fields = { did: payload, service: 'web', subscription: SUB, nonce: w.issue() };
    const req = { ...fields, sig: sigToString(sign(consumer, grantRequestBytes(fields))) };
    refused(await run(w, req), 'ERR_GRANT_SIGNATURE', `did ${label}`);
    assert.equal(w.lookups, []);
  }
});

test.run();
