/**
 * Key files: the node's Ed25519 seed at rest.
 *
 * Key file (`writeKeyFile` / `readKeyFile`): UTF-8 JSON, mode 0600,
 *   { "v": 1, "type": "ed25519", "did": "did:key:z6Mk…", "seed": "<base64 of the 32-byte seed>" }
 * `did` is for humans and is checked against the seed on read. A file that
 * group or others can access, that is not a regular file, is larger than
 * 4 KiB, is not this JSON, or holds a seed that is not 32 bytes is refused
 * with MeshError('ERR_KEY_FILE'); messages never contain key material.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { E } from '../errors.js';
import type { MeshError } from '../errors.js';
import { SEED_LENGTH, keyPairFromSeed } from './ed25519.js';
import type { KeyPair } from './ed25519.js';

/** Largest key file `readKeyFile` reads. */
const MAX_KEY_FILE_BYTES = 4096;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KEY_FILE_FIELDS = new Set(['v', 'type', 'did', 'seed']);

export interface KeyFile {
  v: 1;
  type: 'ed25519';
  did: string;
  /** base64 (with padding) of the 32-byte seed. */
  seed: string;
}

function keyFileError(message: string): MeshError {
  return E.ERR_KEY_FILE(message);
}

/**
 * Write `keyPair` to `path` as a key file (format at the top of this file),
 * mode 0600, atomically: a temporary file in the same directory, created
 * 0600, written and fsynced, then hard-linked to `path` (fails if `path`
 * exists: MeshError 'ERR_KEY_FILE') or, with `{ overwrite: true }`, renamed
 * over it; then the directory is fsynced. A reader never sees a partial file.
 */
export async function writeKeyFile(
  path: string,
  keyPair: KeyPair,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const seed = keyPair.exportSeed();
  const doc: KeyFile = {
    v: 1,
    type: 'ed25519',
    did: keyPair.did,
    seed: Buffer.from(seed).toString('base64'),
  };
  seed.fill(0);
  const content = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    content.fill(0);
    await unlink(tmp).catch(() => {});
    throw keyFileError(`cannot write key file ${path}: ${errCode(err)}`);
  }
  content.fill(0);
  try {
    if (options.overwrite) await rename(tmp, path);
    else await link(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (errCode(err) === 'EEXIST')
      throw keyFileError(`key file ${path} already exists; refusing to overwrite it`);
    throw keyFileError(`cannot write key file ${path}: ${errCode(err)}`);
  }
  if (!options.overwrite) {
    try {
      await unlink(tmp);
    } catch (err) {
      throw keyFileError(`wrote ${path} but could not remove ${tmp}: ${errCode(err)}`);
    }
  }
  await syncDir(dir);
}

/**
 * Read a key file written by `writeKeyFile`. Refuses (MeshError
 * 'ERR_KEY_FILE'): a file group or others can access (any bit of 0077), not
 * a regular file, larger than 4 KiB, not the documented JSON (unknown fields
 * included), a `v` other than 1, a `type` other than "ed25519", a seed that
 * is not canonical base64 of exactly 32 bytes, or a `did` that does not match
 * the seed. Error messages name the file and the problem, never its content.
 */
export async function readKeyFile(path: string): Promise<KeyPair> {
  let raw: Buffer;
  let fh;
  try {
    // O_NONBLOCK: a FIFO in its place must be refused below, not block the open.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw keyFileError(`cannot open key file ${path}: ${errCode(err)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw keyFileError(`key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0)
      throw keyFileError(
        `key file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `it must be 0600 (chmod 600 ${path})`,
      );
    if (st.size > MAX_KEY_FILE_BYTES)
      throw keyFileError(`key file ${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
    raw = await fh.readFile();
  } finally {
    await fh.close();
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    // Not the parser's message: it quotes the content.
    throw keyFileError(`key file ${path} is not valid JSON`);
  } finally {
    raw.fill(0);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw keyFileError(`key file ${path} must hold a JSON object`);
  const rec = doc as Record<string, unknown>;
  for (const k of Object.keys(rec))
    if (!KEY_FILE_FIELDS.has(k))
      throw keyFileError(`key file ${path} has an unknown field ${JSON.stringify(k)}`);
  if (rec.v !== 1) throw keyFileError(`key file ${path}: v must be 1`);
  if (rec.type !== 'ed25519') throw keyFileError(`key file ${path}: type must be "ed25519"`);
  if (typeof rec.seed !== 'string' || !BASE64.test(rec.seed))
    throw keyFileError(`key file ${path}: seed must be a base64 string`);
  const seed = Buffer.from(rec.seed, 'base64');
  try {
    if (seed.length !== SEED_LENGTH)
      throw keyFileError(`key file ${path}: seed is ${seed.length} bytes, expected ${SEED_LENGTH}`);
    if (seed.toString('base64') !== rec.seed)
      throw keyFileError(`key file ${path}: seed is not canonical base64`);
    const keyPair = keyPairFromSeed(seed);
    if (rec.did !== undefined && rec.did !== keyPair.did)
      throw keyFileError(
        `key file ${path}: did does not match the seed (the file was edited or corrupted)`,
      );
    return keyPair;
  } finally {
    seed.fill(0);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename/link itself is still atomic.
  }
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
