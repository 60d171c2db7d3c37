/**
 * deploy/install.sh for real, inside a throwaway root (a skeleton with the
 * host's account files; users made by systemd-sysusers --root, the unit
 * enabled by systemctl --root). Root only.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as assert from 'uvu/assert';
import { describe, rootOnly, tempDir } from '../../helpers/test.js';

const run = promisify(execFile);
const test = describe('deploy/install', 300_000);
const INSTALL = fileURLToPath(new URL('../../../../deploy/install.sh', import.meta.url));
const skip = rootOnly();

function skeleton(): string {
  const root = tempDir('meshnode-root-');
  for (const d of ['etc', 'usr/lib', 'var/lib']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['passwd', 'group', 'shadow', 'gshadow']) {
    if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(root, 'etc', f));
  }
  return root;
}

/** path → "mode uid gid sha256" for everything under `root` but the program's bulk. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const rel = p.slice(root.length);
      if (rel.startsWith('/opt/meshnode/node_modules')) continue;
      const st = lstatSync(p);
      const sum = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
      out[rel] = `${(st.mode & 0o7777).toString(8)} ${st.uid} ${st.gid} ${sum}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

const install = (root: string, ...args: string[]) =>
  run('sh', [INSTALL, '--root', root, ...args], { maxBuffer: 16 * 1024 * 1024 });

if (skip) {
  test.skip(`install.sh in a throwaway root (${skip})`);
} else {
  test('installs files, user, permissions and the enabled unit; a second run changes nothing', async () => {
    const root = skeleton();
    await install(root);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const uid = Number(/^meshnode:x:(\d+):(\d+):/m.exec(passwd)?.[1]);
    assert.ok(uid > 0, 'meshnode user created in the root');
    assert.not.match(readFileSync('/etc/passwd', 'utf8'), /^meshnode:/m, 'host untouched');
    const mode = (p: string) => (lstatSync(join(root, p)).mode & 0o7777).toString(8);
    assert.is(mode('var/lib/meshnode'), '700');
    assert.is(mode('var/lib/meshnode/node.key'), '600');
    assert.is(lstatSync(join(root, 'var/lib/meshnode/node.key')).uid, uid);
    assert.is(mode('etc/meshnode'), '750');
    assert.is(mode('etc/meshnode/meshnode.toml'), '640');
    // The installed config names the service's directories (it said ./var).
    const conf = readFileSync(join(root, 'etc/meshnode/meshnode.toml'), 'utf8');
    assert.match(conf, /^state_dir = "\/var\/lib\/meshnode"/m);
    assert.match(conf, /^socket = "\/run\/meshnode\/admin\.sock"/m);
    // The CLI on PATH, running this install's program.
    assert.is(mode('usr/local/bin/meshnode'), '755');
    assert.match(
      readFileSync(join(root, 'usr/local/bin/meshnode'), 'utf8'),
      /^exec \S+ \/opt\/meshnode\/dist\/supervisor\/cli\.js "\$@"$/m,
    );
    assert.ok(existsSync(join(root, 'opt/meshnode/dist/supervisor/cli.js')));
    assert.match(
      readFileSync(join(root, 'etc/bash_completion.d/meshnode'), 'utf8'),
      /^complete -F _meshnode meshnode$/m,
      'bash completion installed',
    );
    assert.not.ok(existsSync(join(root, 'opt/meshnode/dist/test')), 'tests are not installed');
    const unit = readFileSync(join(root, 'etc/systemd/system/meshnode.service'), 'utf8');
    assert.match(unit, /^ExecStart=\S+node \/opt\/meshnode\/dist\/supervisor\/cli\.js start/m);
    assert.ok(
      lstatSync(
        join(root, 'etc/systemd/system/multi-user.target.wants/meshnode.service'),
      ).isSymbolicLink(),
    );
    const first = snapshot(root);
    await install(root);
    assert.equal(snapshot(root), first);
  });

  test('an operator config and the node key survive an upgrade', async () => {
    const root = skeleton();
    await install(root);
    const key = readFileSync(join(root, 'var/lib/meshnode/node.key'), 'utf8');
    const conf = join(root, 'etc/meshnode/meshnode.toml');
    await run('sh', ['-c', `echo '# edited by the operator' >> ${conf}`]);
    const edited = readFileSync(conf, 'utf8');
    await install(root);
    assert.is(readFileSync(join(root, 'var/lib/meshnode/node.key'), 'utf8'), key);
    assert.is(readFileSync(conf, 'utf8'), edited);
  });

  test('--uninstall keeps state and keys (and the config, in the state dir); --purge removes them', async () => {
    const root = skeleton();
    await install(root);
    const key = readFileSync(join(root, 'var/lib/meshnode/node.key'), 'utf8');
    await install(root, '--uninstall');
    assert.not.ok(existsSync(join(root, 'opt/meshnode')));
    assert.not.ok(existsSync(join(root, 'etc/systemd/system/meshnode.service')));
    assert.not.ok(existsSync(join(root, 'etc/meshnode')));
    assert.is(readFileSync(join(root, 'var/lib/meshnode/node.key'), 'utf8'), key);
    assert.ok(existsSync(join(root, 'var/lib/meshnode/meshnode.toml.bak')));
    await install(root);
    assert.is(
      readFileSync(join(root, 'var/lib/meshnode/node.key'), 'utf8'),
      key,
      'reinstall keeps the key',
    );
    await install(root, '--uninstall', '--purge');
    assert.not.ok(existsSync(join(root, 'var/lib/meshnode')));
    assert.not.ok(existsSync(join(root, 'usr/local/bin/meshnode')));
    assert.not.ok(existsSync(join(root, 'etc/bash_completion.d/meshnode')), 'completion removed');
    assert.not.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^meshnode:/m);
    assert.not.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^meshnode:/m, 'group purged');
  });

  test('--root works on an empty directory', async () => {
    const root = tempDir('meshnode-empty-root-');
    await install(root);
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^meshnode:/m);
    assert.ok(existsSync(join(root, 'var/lib/meshnode/node.key')));
    await install(root, '--uninstall', '--purge');
  });
}

test.run();
