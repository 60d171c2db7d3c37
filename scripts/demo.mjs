#!/usr/bin/env node
// `npm run demo`: three nodes on loopback, each a real `meshnode start`
// process with its own state directory under one temp dir:
//   A offers a service (manual approval);
//   B subscribes, A approves, B activates and gets the endpoint;
//   C subscribes, is not approved, and its activation is refused.
// Every step is printed; the nodes keep running for `meshnode console`
// until Ctrl-C, which stops all three and removes the temp dir. With
// `--once` it stops them as soon as the steps are done (CI runs it so:
// exit 0 only if B was granted and C refused).
//
// Piped (`npm run demo | tee demo.log`), a Ctrl-C kills the reader too:
// the demo's next write fails with EPIPE. Output then stops, and the nodes
// are stopped and the temp dir removed all the same; so they are when the
// terminal goes away (SIGHUP).
//
// Gossip listens on 127.0.0.1 (free ports picked at start); B and C dial A.
// mesh.cidrs includes 127.0.0.0/8, so loopback addresses count as mesh IPs.
// The nft executor runs its memory backend: nothing touches the host's
// firewall, and the grant is visible in `nft.list` all the same.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../dist/supervisor/admin-client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'supervisor', 'cli.js');
const SERVICE = { service: 'web', port: 8080, proto: 'tcp', mode: 'manual', leaseSeconds: 300 };
/** Each wait (a node up, gossip connected, an entry replicated) gives up after this. */
const STEP_TIMEOUT_MS = 60_000;

const once = process.argv.includes('--once');
const dir = mkdtempSync(join(tmpdir(), 'meshnode-demo-'));
const nodes = [];
let stopping = null;
/** The reader of our output went away (EPIPE): nothing more is written, the nodes are stopped. */
let outputGone = false;

const say = (s = '') => {
  if (!outputGone) process.stdout.write(`${s}\n`);
};
process.stdout.on('error', (err) => {
  outputGone = true;
  void stopAll(err.code === 'EPIPE' ? 0 : 1);
});
const step = (n, s) => say(`\n[${n}] ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
process.on('SIGHUP', () => void stopAll(0));

try {
  await main();
  if (once) await stopAll(0);
} catch (err) {
  say(`\ndemo failed: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  for (const n of nodes) say(`  ${n.name}'s log: ${n.log}`);
  await stopAll(1, { keep: true });
}

async function main() {
  say(`meshnode demo: three nodes on loopback, state under ${dir}`);
  const [pa, pb, pc] = await freePorts(3);
  const urlA = `wss://127.0.0.1:${pa}/gossip`;

  step(1, 'starting nodes A, B and C (B and C dial A)');
  const a = await startNode('A', pa, []);
  const b = await startNode('B', pb, [urlA]);
  const c = await startNode('C', pc, [urlA]);
  for (const n of [a, b, c]) say(`  ${n.name}  ${n.did}  gossip 127.0.0.1:${n.port}`);
  await waitFor('B and C connected to A', async () => {
    const peers = (await a.client.call('peers')).peers;
    return [b, c].every((n) => peers.some((p) => p.did === n.did && p.state === 'open'));
  });
  say('  gossip: A <-> B and A <-> C authenticated and syncing');

  step(
    2,
    `A offers "${SERVICE.service}" on port ${SERVICE.port}/${SERVICE.proto}, manual approval`,
  );
  const offer = await a.client.call('offer', SERVICE);
  say(`  offer entry ${offer.id}`);

  step(3, 'B and C subscribe to it');
  // Until gossip has shown B (and C) their own feed's head, their journals
  // refuse to append as themselves (no self-fork): retried until then.
  const subB = await retry('B subscribes', () =>
    b.client.call('subscribe', { provider: a.did, service: SERVICE.service }),
  );
  const subC = await retry('C subscribes', () =>
    c.client.call('subscribe', { provider: a.did, service: SERVICE.service }),
  );
  say(`  B's subscription ${subB.id}`);
  say(`  C's subscription ${subC.id}`);

  step(4, "A approves B's subscription (C's stays unapproved)");
  // A can approve once gossip has brought B's subscription into A's journal.
  const approval = await retry("B's subscription reaches A", () =>
    a.client.call('approve', { subscription: subB.id }),
  );
  say(`  approval entry ${approval.id}`);

  step(5, 'B activates: asks A for access over the gossip link');
  const activation = await retry('B activates', () =>
    b.client.call('activate', { subscription: subB.id }),
  );
  const ep = activation.endpoint;
  say(
    `  granted: ${ep.ip}:${ep.port}/${ep.proto} until ${new Date(activation.expires).toISOString()}`,
  );
  say(`  grant entry ${activation.grant}`);

  step(6, 'C activates too, and is refused');
  try {
    await c.client.call('activate', { subscription: subC.id });
    throw new Error("C's activation was allowed; it must be refused (not approved)");
  } catch (err) {
    if (err.code !== 'ERR_GRANT_NOT_APPROVED') throw err;
    say(`  refused: ${err.code} (${err.message})`);
  }

  step(7, "A's side of it");
  const grants = await a.client.call('grants');
  for (const g of grants.live)
    say(
      `  live grant: ${short(g.subscriber)} -> ${g.service} from ${g.ip}, lease until ${new Date(g.expires).toISOString()}`,
    );
  const nft = await a.client.call('nft.status').catch((err) => ({ error: err.message }));
  if (nft.backend)
    say(
      `  firewall: ${nft.backend} backend (${nft.enforcing ? 'enforcing' : 'nothing enforced'}), ${nft.grants} grant(s)`,
    );

  say('\ndemo ok: B was granted, C was refused');
  if (once) return;
  say('\nThe nodes keep running. Watch them with the console (q leaves it):');
  for (const n of [a, b, c]) say(`  node ${CLI} console --socket ${n.socket}     # ${n.name}`);
  say('or script them, e.g.:');
  say(`  node ${CLI} grants --socket ${a.socket} --json`);
  say('\nCtrl-C stops all three nodes.');
}

async function startNode(name, port, peers) {
  const home = join(dir, name.toLowerCase());
  const stateDir = join(home, 'state');
  mkdirSync(home, { recursive: true });
  const config = join(home, 'meshnode.toml');
  writeFileSync(
    config,
    [
      '[node]',
      `state_dir = "${stateDir}"`,
      'log_level = "info"',
      '[metrics]',
      'listen = ""',
      '[gossip]',
      `listen = "127.0.0.1:${port}"`,
      `peers = [${peers.map((p) => `"${p}"`).join(', ')}]`,
      'discover = false',
      'anti_entropy_ms = 1000',
      'backoff_base_ms = 100',
      'backoff_max_ms = 1000',
      '[mesh]',
      'cidrs = ["127.0.0.0/8", "10.0.0.0/8", "fd00::/8"]',
      '[nft]',
      'backend = "memory"',
      '',
    ].join('\n'),
  );
  const log = join(home, 'node.log');
  const out = openSync(log, 'a');
  // Its own process group: a Ctrl-C at the terminal reaches the demo, which stops the nodes in order.
  const proc = spawn(process.execPath, [CLI, 'start', '-c', config], {
    cwd: ROOT,
    stdio: ['ignore', out, out],
    detached: true,
  });
  const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  const node = {
    name,
    port,
    proc,
    exited,
    log,
    config,
    socket: join(stateDir, 'admin.sock'),
    client: null,
    did: '',
  };
  nodes.push(node);
  await waitFor(`${name} up`, async () => {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}); see ${log}`);
    try {
      node.client ??= await AdminClient.connect(node.socket);
      const st = await node.client.call('journal.status', {}, 5000);
      node.did = st.did;
      return true;
    } catch {
      node.client?.destroy();
      node.client = null;
      return false;
    }
  });
  return node;
}

/** Retry `fn` while it fails for a reason that time fixes (replication, self-sync, links). */
async function retry(what, fn) {
  const end = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const transient = [
        'ERR_SELF_SYNC_PENDING',
        'ERR_BAD_REQUEST', // approve/activate: the subscription has not replicated yet
        'ERR_UNAVAILABLE',
        'ERR_TIMEOUT',
      ].includes(err.code);
      if (!transient || Date.now() > end) throw err;
      await sleep(250);
    }
  }
}

async function waitFor(what, check) {
  const end = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function freePorts(n) {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
          });
        }),
    ),
  );
}

function short(did) {
  const key = did.replace(/^did:key:/, '');
  return `${key.slice(0, 8)}..${key.slice(-6)}`;
}

async function stopAll(code, { keep = false } = {}) {
  if (stopping) return stopping;
  stopping = (async () => {
    say('\nstopping the nodes ...');
    for (const n of [...nodes].reverse()) {
      n.client?.destroy();
      if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGTERM');
    }
    const deadline = sleep(15_000).then(() => 'late');
    for (const n of nodes) {
      if ((await Promise.race([n.exited, deadline])) === 'late') n.proc.kill('SIGKILL');
    }
    if (keep) say(`state and logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
    say('stopped');
    process.exit(code);
  })();
  return stopping;
}
