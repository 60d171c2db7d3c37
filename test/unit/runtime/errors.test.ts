import * as assert from 'uvu/assert';
import * as errors from '../../../runtime/errors.js';
import { MeshError, errorFromPayload, toPayload } from '../../../runtime/errors.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/errors', 2000);

/** Every factory, called with plausible arguments, and the code it must carry. */
const FACTORIES: Array<[string, () => MeshError, errors.ErrorCode]> = [
  ['timeout', () => errors.timeout('journal', 'append', 50), 'ERR_TIMEOUT'],
  ['actorExited', () => errors.actorExited('journal', 'append'), 'ERR_ACTOR_EXITED'],
  ['untrusted', () => errors.untrusted('gossip', 'nft', 'allow'), 'ERR_UNTRUSTED'],
  ['mailboxFull', () => errors.mailboxFull('journal', 1024), 'ERR_MAILBOX_FULL'],
  ['noRoute', () => errors.noRoute('gossip', 'nft'), 'ERR_NO_ROUTE'],
  ['unknownAction', () => errors.unknownAction('journal', 'frobnicate'), 'ERR_UNKNOWN_ACTION'],
  ['handlerFailed', () => errors.handlerFailed('journal', 'append', 'disk full'), 'ERR_HANDLER'],
  ['stopping', () => errors.stopping('journal'), 'ERR_STOPPING'],
  ['control', () => errors.control('journal', 'stats', 'worker exited'), 'ERR_CONTROL'],
  [
    'invalidOption',
    () => errors.invalidOption('options.maxPeers', 'must be a positive integer'),
    'ERR_INVALID_OPTION',
  ],
  ['invalidConfig', () => errors.invalidConfig('bad toml'), 'ERR_INVALID_CONFIG'],
  ['intensity', () => errors.intensity(5, 10_000), 'ERR_INTENSITY'],
  ['actorInit', () => errors.actorInit('journal', 'lmdb locked'), 'ERR_ACTOR_INIT'],
  ['stateLocked', () => errors.stateLocked('/var/lib/meshnode', 1234), 'ERR_STATE_LOCKED'],
  ['badFrame', () => errors.badFrame('frame is not JSON'), 'ERR_BAD_FRAME'],
  ['tooLarge', () => errors.tooLarge('frame over max_frame_bytes'), 'ERR_TOO_LARGE'],
  ['tooDeep', () => errors.tooDeep('frame', 64), 'ERR_TOO_DEEP'],
  ['protocolViolation', () => errors.protocolViolation('entries nobody asked for'), 'ERR_PROTOCOL'],
  ['handshakeFailed', () => errors.handshakeFailed('auth before hello'), 'ERR_HANDSHAKE'],
  ['nftBadRequest', () => errors.nftBadRequest('apply has nothing to do'), 'ERR_NFT_BAD_REQUEST'],
  [
    'nftBadIp',
    () => errors.nftBadIp('apply.add[0].ip', '10.0.0.1; flush ruleset'),
    'ERR_NFT_BAD_IP',
  ],
  [
    'nftNotMesh',
    () => errors.nftNotMesh('apply.add[0].ip', '192.168.1.1', ['10.0.0.0/8']),
    'ERR_NFT_NOT_MESH',
  ],
  ['nftBadPort', () => errors.nftBadPort('apply.add[0].port', '22'), 'ERR_NFT_BAD_PORT'],
  ['nftBadProto', () => errors.nftBadProto('apply.add[0].proto', 'icmp'), 'ERR_NFT_BAD_PROTO'],
  [
    'nftBadLease',
    () => errors.nftBadLease('apply.add[0].leaseSeconds', 0, 'from 1 to 31622400'),
    'ERR_NFT_BAD_LEASE',
  ],
  ['nftBadName', () => errors.nftBadName('set', 'x; flush ruleset'), 'ERR_NFT_BAD_NAME'],
  [
    'nftNotOffered',
    () => errors.nftNotOffered('reconcile.grants[0]', 'udp_53'),
    'ERR_NFT_NOT_OFFERED',
  ],
  [
    'nftFailed',
    () => errors.nftFailed('commit', 'Error: No such file or directory'),
    'ERR_NFT_FAILED',
  ],
  ['nftUnavailable', () => errors.nftUnavailable('/usr/sbin/nft: ENOENT'), 'ERR_NFT_UNAVAILABLE'],
  [
    'sandboxModule',
    () => errors.sandboxModule('deny-list', 'cannot read policies/deny-list.js'),
    'ERR_SANDBOX_MODULE',
  ],
  ['unknownProcess', () => errors.unknownProcess('deny-list'), 'ERR_SANDBOX_NO_PROCESS'],
];

test('every factory makes a MeshError with its stable code and a message', () => {
  for (const [name, make, code] of FACTORIES) {
    const e = make();
    assert.instance(e, MeshError, name);
    assert.instance(e, Error, name);
    assert.is(e.code, code, name);
    assert.is(e.name, 'MeshError', name);
    assert.type(e.message, 'string');
    assert.ok(e.message.length > 0, `${name} has a message`);
  }
});

test('every exported factory is covered, and codes are distinct', () => {
  const exported = Object.entries(errors)
    .filter(
      ([k, v]) =>
        typeof v === 'function' && !['MeshError', 'toPayload', 'errorFromPayload'].includes(k),
    )
    .map(([k]) => k)
    .sort();
  assert.equal(exported, FACTORIES.map(([n]) => n).sort());
  const codes = FACTORIES.map(([, , c]) => c);
  assert.is(new Set(codes).size, codes.length);
});

test('invalidConfig keeps its cause', () => {
  const cause = new SyntaxError('line 3');
  assert.is(errors.invalidConfig('bad toml', cause).cause, cause);
});

test('toPayload of a MeshError keeps code and message; round trip through structured clone', () => {
  for (const [name, make] of FACTORIES) {
    const original = make();
    const payload = toPayload(original);
    assert.equal(Object.keys(payload).sort(), ['code', 'message'], name);
    const back = errorFromPayload(structuredClone(payload));
    assert.instance(back, MeshError, name);
    assert.is(back.code, original.code, name);
    assert.is(back.message, original.message, name);
  }
});

test('toPayload of anything else is ERR_HANDLER, carrying the message but no stack', () => {
  const fromError = toPayload(new TypeError('nope'));
  assert.is(fromError.code, 'ERR_HANDLER');
  assert.is(fromError.message, 'nope');
  assert.not.ok('stack' in fromError);
  const fromString = toPayload('plain');
  assert.is(fromString.code, 'ERR_HANDLER');
  assert.is(fromString.message, 'plain');
  assert.is(toPayload(undefined).code, 'ERR_HANDLER');
  assert.is(toPayload({ code: 'ERR_TIMEOUT' }).code, 'ERR_HANDLER', 'a look-alike is not trusted');
});

test('errorFromPayload keeps unknown codes (codes from newer peers pass through)', () => {
  const e = errorFromPayload({ code: 'ERR_SOMETHING_NEW', message: 'x' });
  assert.is(e.code, 'ERR_SOMETHING_NEW');
  assert.instance(e, MeshError);
});

test.run();
