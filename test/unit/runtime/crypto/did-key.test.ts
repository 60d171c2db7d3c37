import { base58 } from '@scure/base';
import * as assert from 'uvu/assert';
import { didFromPublicKey, isDid, publicKeyFromDid } from '../../../../runtime/crypto/did-key.js';
import { generateKeyPair, keyPairFromSeed } from '../../../../runtime/crypto/ed25519.js';
import { fromHex, toHex } from '../../../../runtime/crypto/hash.js';
import { describe } from '../../../helpers/test.js';
import { readVectorJson } from './vectors.js';

const test = describe('runtime/crypto/did-key');

interface DidVectors {
  vectors: { seed: string; did: string; publicKeyBase58?: string }[];
}

function badDid(did: unknown): void {
  try {
    publicKeyFromDid(did as string);
  } catch (err) {
    assert.is(
      (err as { code?: string }).code,
      'ERR_BAD_DID',
      `${String(did)}: ${(err as Error).message}`,
    );
    assert.not.ok(isDid(did));
    return;
  }
  throw new Error(`publicKeyFromDid(${JSON.stringify(did)}) must throw ERR_BAD_DID`);
}

const z = (bytes: number[] | Uint8Array) => `did:key:z${base58.encode(Uint8Array.from(bytes))}`;

test('every w3c-ccg vector: seed → public key → did:key → public key', () => {
  const { vectors } = readVectorJson<DidVectors>('did-key-ed25519.json');
  assert.ok(vectors.length >= 5);
  let withBase58 = 0;
  for (const v of vectors) {
    const kp = keyPairFromSeed(fromHex(v.seed, 32));
    assert.is(didFromPublicKey(kp.publicKey), v.did, v.seed);
    assert.is(kp.did, v.did);
    assert.equal(publicKeyFromDid(v.did), kp.publicKey);
    assert.ok(isDid(v.did));
    if (v.publicKeyBase58 !== undefined) {
      withBase58++;
      assert.is(base58.encode(kp.publicKey), v.publicKeyBase58, v.seed);
    }
  }
  assert.ok(withBase58 >= 4);
});

test('random keys round trip; every Ed25519 did:key starts with did:key:z6Mk and is 56 chars', () => {
  for (let i = 0; i < 200; i++) {
    const kp = generateKeyPair();
    const did = didFromPublicKey(kp.publicKey);
    assert.ok(did.startsWith('did:key:z6Mk'), did);
    assert.is(did.length, 56);
    assert.is(toHex(publicKeyFromDid(did)), toHex(kp.publicKey));
  }
});

test('didFromPublicKey refuses a key that is not 32 bytes (ERR_BAD_KEY)', () => {
  for (const k of [new Uint8Array(31), new Uint8Array(33), 'abc']) {
    assert.throws(
      () => didFromPublicKey(k as Uint8Array),
      (e: { code?: string }) => e.code === 'ERR_BAD_KEY',
    );
  }
});

test('malformed did:key strings are refused with ERR_BAD_DID', () => {
  const good = keyPairFromSeed(new Uint8Array(32)).did;
  const pub = publicKeyFromDid(good);
  badDid(undefined);
  badDid(42);
  badDid('');
  badDid('did:web:example.com');
  badDid('did:key:');
  badDid('did:key:z');
  badDid(good.replace('did:key:', 'did:KEY:'));
  badDid(good.replace('did:key:z', 'did:key:f')); // another multibase
  badDid(`${good}#${good.slice(8)}`); // a DID URL, not a DID
  badDid(`${good} `);
  badDid(` ${good}`);
  badDid(good.slice(0, -1));
  badDid(`${good}1`);
  for (const c of ['0', 'O', 'I', 'l', '+', '/']) badDid(good.slice(0, 20) + c + good.slice(21)); // not base58
  badDid(z([0xec, 0x01, ...pub])); // x25519-pub
  badDid(z([0xed, 0x00, ...pub]));
  badDid(z([0xe7, 0x01, ...pub])); // secp256k1-pub codec, same length
  badDid(z([0xed, 0x01, ...pub.subarray(0, 31)])); // too short
  badDid(z([0xed, 0x01, ...pub, 0])); // too long
  badDid(z([0x00, 0xed, 0x01, ...pub.subarray(0, 31)])); // leading zero byte
});

test('an error message never grows with the input', () => {
  try {
    publicKeyFromDid(`did:key:z${'x'.repeat(100_000)}`);
  } catch (err) {
    assert.ok((err as Error).message.length < 200);
    return;
  }
  assert.unreachable();
});

test.run();
