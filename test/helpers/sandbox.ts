/**
 * Sandbox fixtures: process modules written to a temp directory, a host
 * that is always closed after the test, and messages with defaults.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxHost } from '../../sandbox/host.js';
import type { HostOptions } from '../../sandbox/host.js';
import type { MessageInput, ProcessSpec } from '../../sandbox/types.js';
import { tempDir } from './test.js';

export const OWNER = 'did:key:owner';
export const T = 1_700_000_000_000;

/** Write `source` as a process module; returns its path. */
export function moduleFile(source: string, name = 'process'): string {
  const file = join(tempDir('meshnode-sandbox-'), `${name}.js`);
  writeFileSync(file, source);
  return file;
}

/** A spec for `source` named `name`, owned by OWNER. */
export function proc(name: string, source: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return { name, module: moduleFile(source, name), owner: OWNER, ...extra };
}

let seq = 0;
/** A message from the owner; `action` becomes the Action tag. */
export function msg(action: string, extra: Partial<MessageInput> = {}): MessageInput {
  const { Tags = [], ...rest } = extra;
  return {
    Id: `m${++seq}`,
    From: OWNER,
    Timestamp: T,
    Tags: [{ name: 'Action', value: action }, ...Tags],
    ...rest,
  };
}

/** Start a host, run `fn`, always close it. */
export async function withHost<R>(
  opts: HostOptions,
  fn: (host: SandboxHost) => Promise<R>,
): Promise<R> {
  const host = new SandboxHost(opts);
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}
