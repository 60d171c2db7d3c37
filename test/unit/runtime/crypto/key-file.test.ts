import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readKeyFile, writeKeyFile } from '../../../../runtime/crypto/key-file.js';
import { generateKeyPair } from '../../../../runtime/crypto/ed25519.js';
import { toHex } from '../../../../runtime/crypto/hash.js';
import { describe, rejectsWith, tempDir } from '../../../helpers/test.js';

const test = describe('runtime/crypto/keyfile');
const mode = (p: string) => statSync(p).mode & 0o777;

/** Write raw content as a key file with mode 0600. */
function raw(dir: string, name: string, content: string, m = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: m });
  chmodSync(p, m);
  return p;
}

const seedB64 = (kp: ReturnType<typeof generateKeyPair>) =>
  Buffer.from(kp.exportSeed()).toString('base64');

test('writeKeyFile creates a 0600 JSON file that readKeyFile reads back', async () => {
  const dir = tempDir();
  const path = join(dir, 'node.key');
  const kp = generateKeyPair();
  await writeKeyFile(path, kp);
  assert.is(mode(path), 0o600);
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  assert.equal(Object.keys(doc).sort(), ['did', 'seed', 'type', 'v']);
  assert.is(doc.v, 1);
  assert.is(doc.type, 'ed25519');
  assert.is(doc.did, kp.did);
  assert.is(doc.seed, seedB64(kp));
  const back = await readKeyFile(path);
  assert.equal(back.publicKey, kp.publicKey);
  assert.equal(back.exportSeed(), kp.exportSeed());
  assert.is(back.did, kp.did);
  assert.equal(readdirSync(dir), ['node.key'], 'no temporary file is left behind');
});

test('the file is 0600 whatever the umask', async () => {
  const dir = tempDir();
  const old = process.umask(0);
  try {
    await writeKeyFile(join(dir, 'a.key'), generateKeyPair());
  } finally {
    process.umask(old);
  }
  assert.is(mode(join(dir, 'a.key')), 0o600);
});

test('refuses to overwrite unless asked; overwriting replaces atomically and stays 0600', async () => {
  const dir = tempDir();
  const path = join(dir, 'node.key');
  const first = generateKeyPair();
  const second = generateKeyPair();
  await writeKeyFile(path, first);
  const before = readFileSync(path, 'utf8');
  const err = await rejectsWith(writeKeyFile(path, second), 'ERR_KEY_FILE');
  assert.match(err.message, /already exists/);
  assert.is(readFileSync(path, 'utf8'), before, 'the existing key is untouched');
  assert.equal(readdirSync(dir), ['node.key']);
  await writeKeyFile(path, second, { overwrite: true });
  assert.is(mode(path), 0o600);
  assert.equal((await readKeyFile(path)).publicKey, second.publicKey);
  assert.equal(readdirSync(dir), ['node.key']);
});

test('a missing directory is an ERR_KEY_FILE, not a crash', async () => {
  const dir = tempDir();
  await rejectsWith(writeKeyFile(join(dir, 'nope', 'node.key'), generateKeyPair()), 'ERR_KEY_FILE');
  await rejectsWith(readKeyFile(join(dir, 'absent.key')), 'ERR_KEY_FILE');
});

test('readKeyFile refuses a file group or others can access', async () => {
  const dir = tempDir();
  const path = join(dir, 'node.key');
  await writeKeyFile(path, generateKeyPair());
  for (const m of [0o640, 0o604, 0o644, 0o660, 0o602, 0o620, 0o601, 0o610, 0o666]) {
    chmodSync(path, m);
    const err = await rejectsWith(readKeyFile(path), 'ERR_KEY_FILE');
    assert.match(err.message, /group or others/);
    assert.ok(err.message.includes(`0${m.toString(8)}`), err.message);
  }
  chmodSync(path, 0o400);
  await readKeyFile(path); // owner read-only is fine
  chmodSync(path, 0o600);
  await readKeyFile(path);
});

test('readKeyFile refuses a directory, a FIFO (without blocking) and an oversized file', async () => {
  const dir = tempDir();
  const sub = join(dir, 'd.key');
  mkdirSync(sub, { mode: 0o700 });
  await rejectsWith(readKeyFile(sub), 'ERR_KEY_FILE');
  const fifo = join(dir, 'fifo.key');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  assert.match(
    (await rejectsWith(readKeyFile(fifo), 'ERR_KEY_FILE')).message,
    /not a regular file/,
  );
  const big = raw(dir, 'big.key', ' '.repeat(5000));
  assert.match((await rejectsWith(readKeyFile(big), 'ERR_KEY_FILE')).message, /larger than/);
});

test('readKeyFile refuses malformed content, wrong lengths and mismatched dids', async () => {
  const dir = tempDir();
  const kp = generateKeyPair();
  const other = generateKeyPair();
  const good = { v: 1, type: 'ed25519', did: kp.did, seed: seedB64(kp) };
  const seed33 = Buffer.concat([Buffer.from(kp.exportSeed()), Buffer.of(1)]).toString('base64');
  const seed31 = Buffer.from(kp.exportSeed()).subarray(0, 31).toString('base64');
  // The same 32 bytes with non-zero padding bits: not canonical base64.
  const s = seedB64(kp);
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const nonCanonical = s.slice(0, 42) + B64[B64.indexOf(s[42]!) ^ 1]! + '=';
  assert.equal(Buffer.from(nonCanonical, 'base64'), Buffer.from(s, 'base64'));
  const cases: [string, string, RegExp][] = [
    ['empty', '', /not valid JSON/],
    ['not json', `seed=${s}`, /not valid JSON/],
    ['array', JSON.stringify([good]), /JSON object/],
    ['string', JSON.stringify(s), /JSON object/],
    ['null', 'null', /JSON object/],
    ['no seed', JSON.stringify({ ...good, seed: undefined }), /seed must be a base64 string/],
    ['seed number', JSON.stringify({ ...good, seed: 1 }), /seed must be a base64 string/],
    ['seed not base64', JSON.stringify({ ...good, seed: `${s.slice(0, 40)}!!!=` }), /base64/],
    ['seed hex', JSON.stringify({ ...good, seed: toHex(kp.exportSeed()) }), /seed is 48 bytes/],
    ['seed 33 bytes', JSON.stringify({ ...good, seed: seed33 }), /seed is 33 bytes, expected 32/],
    ['seed 31 bytes', JSON.stringify({ ...good, seed: seed31 }), /seed is 31 bytes, expected 32/],
    ['seed unpadded', JSON.stringify({ ...good, seed: s.replace('=', '') }), /base64/],
    ['seed non-canonical', JSON.stringify({ ...good, seed: nonCanonical }), /not canonical/],
    ['v 2', JSON.stringify({ ...good, v: 2 }), /v must be 1/],
    ['v missing', JSON.stringify({ ...good, v: undefined }), /v must be 1/],
    ['type', JSON.stringify({ ...good, type: 'x25519' }), /type must be "ed25519"/],
    ['unknown field', JSON.stringify({ ...good, comment: 'hi' }), /unknown field "comment"/],
    ['did mismatch', JSON.stringify({ ...good, did: other.did }), /did does not match/],
  ];
  for (const [name, content, re] of cases) {
    const p = raw(dir, `${name.replace(/ /g, '-')}.key`, content);
    const err = await rejectsWith(readKeyFile(p), 'ERR_KEY_FILE');
    assert.match(err.message, re, `${name}: ${err.message}`);
    assert.not.ok(err.message.includes(s), `${name}: the message must not contain the seed`);
    assert.not.ok(err.message.includes(s.slice(0, 12)), `${name}: not even part of it`);
    assert.is(err.cause, undefined, `${name}: no cause that could quote the content`);
  }
  // The did is optional (it is for humans); without it the file still reads.
  const noDid = raw(dir, 'nodid.key', JSON.stringify({ ...good, did: undefined }));
  assert.equal((await readKeyFile(noDid)).publicKey, kp.publicKey);
  const ok = raw(dir, 'ok.key', JSON.stringify(good));
  assert.equal((await readKeyFile(ok)).publicKey, kp.publicKey);
});

test.run();
