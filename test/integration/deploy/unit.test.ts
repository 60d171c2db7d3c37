/**
 * The systemd unit: `systemd-analyze verify` is clean and the offline
 * security score is at most 2.0 ("OK"), parsed from its last line.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as assert from 'uvu/assert';
import { describe } from '../../helpers/test.js';

const run = promisify(execFile);
const test = describe('deploy/unit', 60_000);
const UNIT = fileURLToPath(new URL('../../../../deploy/meshnode.service', import.meta.url));
const MAX_EXPOSURE = 2.0;

test('systemd-analyze verify finds nothing to report', async () => {
  const { stdout, stderr } = await run('systemd-analyze', ['verify', UNIT]);
  assert.is(`${stdout}${stderr}`.trim(), '');
});

test(`the offline security exposure is at most ${MAX_EXPOSURE}`, async () => {
  const { stdout } = await run('systemd-analyze', ['security', '--offline=true', UNIT]);
  const m = /Overall exposure level for meshnode\.service: (\d+(?:\.\d+)?) (\S+)/.exec(stdout);
  assert.ok(m, 'the score line is printed');
  assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} ${m[2]}`);
});

test('the unit keeps the properties the issue asks for', () => {
  const unit = readFileSync(UNIT, 'utf8');
  for (const line of [
    'User=meshnode',
    'StateDirectory=meshnode',
    'RuntimeDirectory=meshnode',
    'ConfigurationDirectory=meshnode',
    'Restart=on-failure',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'SystemCallFilter=@system-service',
    'CapabilityBoundingSet=CAP_NET_ADMIN',
    'AmbientCapabilities=CAP_NET_ADMIN',
    'UMask=0077',
  ]) {
    assert.ok(unit.split('\n').includes(line), line);
  }
  // The stop timeout outlasts the node's own bounded graceful stop (~30 s).
  const stop = Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit)?.[1]);
  assert.ok(stop > 30, `TimeoutStopSec=${stop}s`);
  assert.match(unit, /^StartLimitBurst=\d+$/m);
  assert.match(unit, /^LimitNOFILE=\d+$/m);
});

test.run();
