/**
 * The node started the way deploy/meshnode.service starts it — its user,
 * its environment (STATE_DIRECTORY, RUNTIME_DIRECTORY,
 * CONFIGURATION_DIRECTORY, NODE_ENV), its umask, CAP_NET_ADMIN as the only
 * (ambient) capability, no new privileges — then stopped with SIGTERM: exit
 * 0 within the unit's stop timeout, and what it acknowledged is there after
 * a restart. No systemd runs here (PID 1 is not systemd), so setpriv does
 * what the unit's directives do. Root only.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as assert from 'uvu/assert';
import { describe, rootOnly, tempDir, until } from '../../helpers/test.js';

const run = promisify(execFile);
const test = describe('deploy/service', 120_000);
const UNIT = readFileSync(
  fileURLToPath(new URL('../../../../deploy/meshnode.service', import.meta.url)),
  'utf8',
);
const CLI = fileURLToPath(new URL('../../../supervisor/cli.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../../deploy/meshnode.toml.example', import.meta.url));
const skip = rootOnly();
const directive = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(UNIT)?.[1] ?? '';
const CAP_NET_ADMIN_BIT = 12n;

interface Box {
  user: string;
  uid: number;
  gid: number;
  state: string;
  runtime: string;
  config: string;
}

async function box(): Promise<Box> {
  const base = tempDir('meshnode-svc-');
  chmodSync(base, 0o755);
  const user = `mn${process.pid % 100000}`;
  await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  const uid = Number((await run('id', ['-u', user])).stdout);
  const gid = Number((await run('id', ['-g', user])).stdout);
  const state = join(base, 'state');
  const runtime = join(base, 'run');
  const confDir = join(base, 'etc');
  // As the unit's StateDirectoryMode / RuntimeDirectoryMode / ConfigurationDirectory make them.
  for (const [dir, mode, owner] of [
    [state, 0o700, uid],
    [runtime, 0o750, uid],
    [confDir, 0o750, 0],
  ] as const) {
    mkdirSync(dir);
    chownSync(dir, owner, gid);
    chmodSync(dir, mode);
  }
  const config = join(confDir, 'meshnode.toml');
  copyFileSync(EXAMPLE, config);
  // The example as installed, but on ports no other test uses.
  const text = readFileSync(config, 'utf8')
    .replace('listen = "127.0.0.1:9464"', 'listen = ""')
    .replace('listen = "127.0.0.1:7946"', 'listen = "127.0.0.1:0"');
  writeFileSync(config, text);
  chownSync(config, 0, gid);
  chmodSync(config, 0o640);
  return { user, uid, gid, state, runtime, config };
}

/** Start the node as the unit would. */
function startAsUnit(b: Box): ChildProcess {
  const umask = directive('UMask');
  const env = [
    `PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    ...[...UNIT.matchAll(/^Environment=(.*)$/gm)].map((m) => m[1]!),
    `STATE_DIRECTORY=${b.state}`,
    `RUNTIME_DIRECTORY=${b.runtime}`,
    `CONFIGURATION_DIRECTORY=${join(b.config, '..')}`,
  ];
  return spawn(
    'setpriv',
    [
      `--reuid=${b.uid}`,
      `--regid=${b.gid}`,
      '--init-groups',
      '--inh-caps=-all,+net_admin',
      '--ambient-caps=-all,+net_admin',
      '--bounding-set=-all,+net_admin',
      '--no-new-privs',
      '--',
      'env',
      '-i',
      ...env,
      'sh',
      '-c',
      `umask ${umask} && exec "$0" "$@"`,
      process.execPath,
      CLI,
      'start',
      '--config',
      b.config,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

async function cli(b: Box, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [
    CLI,
    ...args,
    '--socket',
    join(b.runtime, 'admin.sock'),
    '--json',
  ]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

function exitOf(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

if (skip) {
  test.skip(`node run as the unit runs it (${skip})`);
} else {
  test('runs as its user with only CAP_NET_ADMIN, stops on SIGTERM with exit 0 in time, keeps what it acknowledged', async () => {
    const b = await box();
    try {
      let node = startAsUnit(b);
      let exited = exitOf(node);
      const sock = join(b.runtime, 'admin.sock');
      await until(
        async () => (await cli(b, 'status').catch(() => ({ ok: false }))).ok === true,
        30_000,
      );
      const st = statSync(sock);
      assert.is(st.uid, b.uid, 'socket owned by the service user');
      assert.is(st.mode & 0o777, 0o600, 'socket mode 0600');
      const status = readFileSync(`/proc/${node.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${b.uid}\\s`, 'm'));
      const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]}`);
      assert.is(capEff, 1n << CAP_NET_ADMIN_BIT, 'CAP_NET_ADMIN and nothing else');
      assert.match(status, /^NoNewPrivs:\s+1/m);
      assert.is(statSync(join(b.state, 'node.key')).mode & 0o777, 0o600);
      assert.is(statSync(join(b.state, 'journal')).mode & 0o777, 0o700, 'umask 0077 applies');

      // Not 22: this node's nft backend filters the host's own namespace here.
      const offer = await cli(b, 'offer', '--service', 'alt', '--port', '2222');
      assert.ok(offer.ok);
      const id = (offer.result as { id: string }).id;

      const stopLimit = Number(/^(\d+)s$/.exec(directive('TimeoutStopSec'))![1]) * 1000;
      const t = Date.now();
      node.kill('SIGTERM');
      assert.is(await exited, 0, 'exit code after SIGTERM');
      assert.ok(Date.now() - t < stopLimit, `stopped in ${Date.now() - t} ms`);

      node = startAsUnit(b);
      exited = exitOf(node);
      await until(
        async () => (await cli(b, 'status').catch(() => ({ ok: false }))).ok === true,
        30_000,
      );
      const tail = (await cli(b, 'journal', 'tail')).result as Array<{ id: string }>;
      assert.ok(
        tail.some((e) => e.id === id),
        'the acknowledged entry is there after the restart',
      );
      node.kill('SIGTERM');
      assert.is(await exited, 0);
    } finally {
      await run('userdel', [b.user]).catch(() => {});
    }
  });
}

test.run();
