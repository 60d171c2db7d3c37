import * as assert from 'uvu/assert';
import * as errors from '../../../runtime/errors.js';
import { MeshError, errorFromPayload, toPayload } from '../../../runtime/errors.js';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderErrorsDoc } from '../../../runtime/errors-doc.js';
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
  ['badRequest', () => errors.badRequest('journal.append.requestId: too long'), 'ERR_BAD_REQUEST'],
  ['banned', () => errors.banned(Date.now() + 60_000), 'ERR_BANNED'],
  ['notAllowed', () => errors.notAllowed('not on the allowlist'), 'ERR_NOT_ALLOWED'],
  ['peerDuplicate', () => errors.peerDuplicate('duplicate connection'), 'ERR_PEER_DUPLICATE'],
  ['peersFull', () => errors.peersFull('max peers reached'), 'ERR_PEERS_FULL'],
];
/** Exported functions that are not factories. */
const NOT_FACTORIES = ['MeshError', 'toPayload', 'errorFromPayload', 'isErrorCode', 'closeCodeOf'];

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
    .filter(([k, v]) => typeof v === 'function' && !NOT_FACTORIES.includes(k))
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

test('errorFromPayload turns a code outside the catalogue into the fallback, keeping its text', () => {
  // Only a peer's answer can carry one (a provider's refusal): it is its word, not our code.
  const e = errorFromPayload({ code: 'ERR_SOMETHING_NEW', message: 'x' });
  assert.is(e.code, 'ERR_HANDLER');
  assert.match(e.message, /ERR_SOMETHING_NEW: x/);
  assert.instance(e, MeshError);
  const refused = errorFromPayload(
    { code: `ERR_${'X'.repeat(500)}`, message: 'no' },
    'ERR_GRANT_REFUSED',
  );
  assert.is(refused.code, 'ERR_GRANT_REFUSED');
  assert.ok(refused.message.length < 100, 'a hostile code is cut short');
  assert.is(
    errorFromPayload({ code: 'ERR_GRANT_RATE', message: 'slow down' }).code,
    'ERR_GRANT_RATE',
  );
});

// --- the catalogue, held true against the source -------------------------

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const SOURCE_DIRS = ['runtime', 'actors', 'supervisor', 'sandbox'];

/** The source without comments (a code named in a comment is not raised). */
function sources(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const rel = join(dir, name);
      if (statSync(join(ROOT, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts'))
        out.push({ file: rel, text: stripComments(readFileSync(join(ROOT, rel), 'utf8')) });
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return out;
}

function stripComments(ts: string): string {
  return ts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"\\])\/\/[^\n]*/g, '$1');
}

test('every code raised in the source is catalogued, and every catalogued code is raised', () => {
  const catalogued = new Set(Object.keys(errors.ERROR_CODES));
  const files = sources();
  const own = files.find((f) => f.file === join('runtime', 'errors.ts'))!;
  const others = files.filter((f) => f !== own);
  const raised = new Set<string>();
  const strays: string[] = [];
  for (const { file, text } of others) {
    // A prefix in a template type (`ERR_GRANT_${string}`) is not a code.
    for (const [code] of text.matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b(?!_)/g)) {
      if (catalogued.has(code)) raised.add(code);
      else strays.push(`${file}: ${code}`);
    }
  }
  // A named factory in errors.ts raises its code where it is called.
  const everywhere = others.map((f) => f.text).join('\n');
  for (const [, name, code] of own.text.matchAll(
    /export const (\w+) = \([^)]*\)(?:: MeshError)? =>\s*E\.(ERR_[A-Z_]+)\(/g,
  )) {
    if (new RegExp(`\\b${name}\\(`).test(everywhere)) raised.add(code!);
  }
  raised.add('ERR_HANDLER'); // toPayload, for anything thrown without a code
  assert.equal(strays, [], 'codes used in the source but not in the catalogue');
  assert.equal(
    [...catalogued].filter((c) => !raised.has(c)),
    [],
    'catalogued codes that nothing raises',
  );
});

test('new MeshError appears only in runtime/errors.ts: every other error comes from a factory', () => {
  const direct = sources()
    .filter((f) => f.file !== join('runtime', 'errors.ts') && /new MeshError\(/.test(f.text))
    .map((f) => f.file);
  assert.equal(direct, []);
});

test('close codes are distinct, in the WebSocket ranges, documented, and map to catalogued codes', () => {
  const entries = Object.entries(errors.CLOSE_CODES);
  const codes = entries.map(([, c]) => c.code);
  assert.is(new Set(codes).size, codes.length, 'distinct');
  for (const [name, c] of entries) {
    assert.ok((c.code >= 1000 && c.code <= 1015) || (c.code >= 4000 && c.code <= 4999), name);
    assert.ok(c.doc.length > 10, `${name} is documented`);
    if ('error' in c) assert.ok(errors.isErrorCode(c.error), `${name}.error is catalogued`);
    assert.is(errors.CLOSE[name as errors.CloseName], c.code);
  }
  assert.is(errors.closeCodeOf(errors.banned(Date.now())), 4004);
  assert.is(errors.closeCodeOf(errors.peersFull('full')), errors.CLOSE.full);
  assert.is(errors.closeCodeOf(errors.E.ERR_BAD_FRAME('x')), errors.CLOSE.badFrame);
});

test('docs/errors.md is the catalogue as rendered (npm run docs regenerates it)', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  assert.ok(doc === renderErrorsDoc(), 'docs/errors.md is stale: run npm run docs');
  for (const code of Object.keys(errors.ERROR_CODES)) assert.ok(doc.includes(`\`${code}\``), code);
  for (const c of Object.values(errors.CLOSE_CODES)) assert.ok(doc.includes(`| ${c.code} |`));
});

test.run();
