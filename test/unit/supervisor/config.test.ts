import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { SYSTEM_CONFIG, findConfig, loadConfig, parseConfig } from '../../../supervisor/config.js';
import { BUILTIN_ACTORS, supervisorInput } from '../../../supervisor/config-specs.js';
import { parseSupervisorOptions } from '../../../supervisor/child-spec.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('supervisor/config');

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a throw');
}

test('the embedded defaults run the four built-in actors on loopback with state in ./var', () => {
  const config = loadConfig();
  assert.is(config.node.state_dir, './var');
  assert.is(config.metrics.listen, '127.0.0.1:9464');
  const sup = parseSupervisorOptions(supervisorInput(config));
  assert.equal(
    sup.children.map((c) => c.name),
    [...BUILTIN_ACTORS],
  );
  assert.is(sup.strategy, 'one_for_one');
  assert.equal(sup.intensity, { maxRestarts: 5, periodMs: 10_000 });
});

test('the topology gives channels only to the pairs DESIGN allows', () => {
  const sup = parseSupervisorOptions(supervisorInput(loadConfig()));
  const pairs = sup.topology.map((p) => [...p].sort().join('-')).sort();
  assert.equal(pairs, ['gossip-grants', 'gossip-journal', 'grants-journal', 'grants-nft']);
});

test('a TOML file overrides defaults and tunes an actor', () => {
  const dir = tempDir();
  const path = join(dir, 'm.toml');
  writeFileSync(
    path,
    '[supervisor]\nstrategy = "rest_for_one"\nmax_restarts = 2\n[actors.journal]\nshutdown_ms = 9000\nmax_old_generation_mb = 64\n',
  );
  const sup = parseSupervisorOptions(supervisorInput(loadConfig(path)));
  assert.is(sup.strategy, 'rest_for_one');
  assert.is(sup.intensity.maxRestarts, 2);
  const journal = sup.children.find((c) => c.name === 'journal')!;
  assert.is(journal.shutdownMs, 9000);
  assert.is(journal.resourceLimits.maxOldGenerationSizeMb, 64);
});

test('each bad field is refused with ERR_INVALID_CONFIG naming it', () => {
  const cases: Array<[unknown, string]> = [
    [{ supervisor: { max_restarts: -1 } }, 'config.supervisor.max_restarts'],
    [{ supervisor: { strategy: 'one_for_some' } }, 'config.supervisor.strategy'],
    [{ node: { log_level: 'loud' } }, 'config.node.log_level'],
    [{ actors: { journal: { shutdown_ms: 'soon' } } }, 'config.actors.journal.shutdown_ms'],
    [{ actors: { extra: [{ name: 'Bad Name', module: 'x.js' }] } }, 'config.actors.extra[0].name'],
    [{ nodes: {} }, 'config'],
  ];
  for (const [data, field] of cases) {
    const err = codeOf(() => parseConfig(data));
    assert.is(err.code, 'ERR_INVALID_CONFIG', `tried ${JSON.stringify(data)}`);
    assert.ok(err.message.startsWith(field), `${err.message} should name ${field}`);
  }
});

test('an unreadable or non-TOML file is ERR_INVALID_CONFIG', () => {
  const dir = tempDir();
  assert.is(codeOf(() => loadConfig(join(dir, 'missing.toml'))).code, 'ERR_INVALID_CONFIG');
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[node\nstate_dir = ');
  assert.is(codeOf(() => loadConfig(bad)).code, 'ERR_INVALID_CONFIG');
});

test('extra actors join the topology through their links', () => {
  const config = parseConfig({
    actors: { extra: [{ name: 'probe', module: '/x.js', links: ['journal'] }] },
  });
  const input = supervisorInput(config);
  assert.ok(input.topology!.some(([a, b]) => a === 'probe' && b === 'journal'));
  assert.is(input.children.at(-1)!.name, 'probe');
});

// ---------------------------------------------------------------------------
// [gossip]

const gossipChild = (config: ReturnType<typeof parseConfig>) =>
  supervisorInput(config).children.find((c) => c.name === 'gossip')!;
const journalChild = (config: ReturnType<typeof parseConfig>) =>
  supervisorInput(config).children.find((c) => c.name === 'journal')!;

test('[gossip] defaults: open mesh on loopback, bounded frames, peers, rate and timeouts', () => {
  const g = parseConfig({}).gossip;
  assert.equal(g, {
    listen: '127.0.0.1:7946',
    advertise: '',
    announce: true,
    path: '/gossip',
    peers: [],
    insecure_plaintext: false,
    mode: 'open',
    allowlist: '',
    discover: true,
    self_sync: 'peers',
    max_peers: 64,
    max_pending_handshakes: 128,
    max_frame_bytes: 4 * 1024 * 1024,
    max_entries_per_frame: 1000,
    max_wants_in_flight: 16,
    max_peers_per_ip: 16,
    max_dial_targets: 64,
    dial_rate_per_s: 4,
    handshake_timeout_ms: 5000,
    idle_timeout_ms: 60_000,
    anti_entropy_ms: 10_000,
    rate_frames_per_s: 2000,
    burst_frames: 4000,
    max_buffered_bytes: 8 * 1024 * 1024,
    backoff_base_ms: 500,
    backoff_max_ms: 30_000,
  });
});

test('[gossip] becomes the gossip actor options; the journal awaits its own head only with peers', () => {
  const dir = tempDir();
  const config = parseConfig({
    node: { state_dir: dir },
    gossip: {
      listen: '[::1]:0',
      peers: ['wss://127.0.0.1:7000/gossip', 'wss://peer.example:443/gossip'],
      mode: 'closed',
      allowlist: join(dir, 'allow'),
      max_entries_per_frame: 200,
      rate_frames_per_s: 7,
    },
  });
  const options = gossipChild(config).options as Record<string, unknown>;
  assert.is(options.listen, '[::1]:0');
  assert.equal(options.peers, ['wss://127.0.0.1:7000/gossip', 'wss://peer.example:443/gossip']);
  assert.is(options.insecurePlaintext, false);
  assert.is(options.mode, 'closed');
  assert.is(options.allowlist, join(dir, 'allow'));
  assert.is(options.maxEntriesPerFrame, 200);
  assert.is(options.rateFrames, 7);
  assert.is(options.handshakeTimeoutMs, 5000);
  assert.is(options.stateDir, dir);
  assert.is((journalChild(config).options as Record<string, unknown>).awaitSelfSync, true);

  const alone = parseConfig({});
  assert.is((journalChild(alone).options as Record<string, unknown>).awaitSelfSync, false);
  const forced = parseConfig({ gossip: { peers: ['wss://a:1/gossip'], self_sync: 'force' } });
  assert.is((journalChild(forced).options as Record<string, unknown>).awaitSelfSync, false);
});

test('[gossip] a relative allowlist path is resolved at load time', () => {
  const config = parseConfig({ gossip: { mode: 'closed', allowlist: 'allow.txt' } });
  const options = gossipChild(config).options as Record<string, unknown>;
  assert.is(options.allowlist, join(process.cwd(), 'allow.txt'));
});

test('[gossip] listen "" (dial only) is accepted', () => {
  assert.is(parseConfig({ gossip: { listen: '' } }).gossip.listen, '');
});

test('[gossip] each bad field is refused with ERR_INVALID_CONFIG naming it', () => {
  const cases: Array<[unknown, string]> = [
    [{ gossip: { mode: 'closed' } }, 'config.gossip.allowlist'],
    [{ gossip: { mode: 'closed', allowlist: '' } }, 'config.gossip.allowlist'],
    [{ gossip: { mode: 'half-open' } }, 'config.gossip.mode'],
    [{ gossip: { listen: 'localhost' } }, 'config.gossip.listen'],
    [{ gossip: { listen: '127.0.0.1:' } }, 'config.gossip.listen'],
    [{ gossip: { listen: ':7946' } }, 'config.gossip.listen'],
    [{ gossip: { listen: '127.0.0.1:port' } }, 'config.gossip.listen'],
    [{ gossip: { listen: '127.0.0.1:123456' } }, 'config.gossip.listen'],
    [{ gossip: { listen: '127.0.0.1:65536' } }, 'config.gossip.listen'],
    [{ gossip: { listen: 'ws://127.0.0.1:7946' } }, 'config.gossip.listen'],
    [{ gossip: { listen: 7946 } }, 'config.gossip.listen'],
    [{ gossip: { path: 'gossip' } }, 'config.gossip.path'],
    [{ gossip: { peers: ['http://127.0.0.1:7946/gossip'] } }, 'config.gossip.peers[0]'],
    [{ gossip: { peers: ['wss://ok:1/g', 'wss://'] } }, 'config.gossip.peers[1]'],
    [{ gossip: { peers: ['wss://a b:1/gossip'] } }, 'config.gossip.peers[0]'],
    [{ gossip: { peers: '127.0.0.1:7946' } }, 'config.gossip.peers'],
    // More than one journal ingest batch (1,000) would be refused whole when it arrived.
    [{ gossip: { max_entries_per_frame: 1001 } }, 'config.gossip.max_entries_per_frame'],
    [{ gossip: { max_entries_per_frame: 0 } }, 'config.gossip.max_entries_per_frame'],
    [{ gossip: { max_frame_bytes: -1 } }, 'config.gossip.max_frame_bytes'],
    [{ gossip: { handshake_timeout_ms: 1.5 } }, 'config.gossip.handshake_timeout_ms'],
    [{ gossip: { self_sync: 'never' } }, 'config.gossip.self_sync'],
    [{ gossip: { discover: 'yes' } }, 'config.gossip.discover'],
    [{ gossip: { peer: [] } }, 'config.gossip'],
    // TLS is the default: ws:// only with insecure_plaintext, and that only on loopback.
    [{ gossip: { peers: ['ws://127.0.0.1:7946/gossip'] } }, 'config.gossip.peers[0]'],
    [{ gossip: { insecure_plaintext: true, listen: '0.0.0.0:7946' } }, 'config.gossip.listen'],
    [
      { gossip: { insecure_plaintext: true, peers: ['ws://10.0.0.2:7946/gossip'] } },
      'config.gossip.peers[0]',
    ],
    [{ gossip: { insecure_plaintext: 'yes' } }, 'config.gossip.insecure_plaintext'],
    // URLs are narrow: no user info, query or fragment; an explicit port.
    [{ gossip: { peers: ['wss://u:p@10.0.0.2:7946/gossip'] } }, 'config.gossip.peers[0]'],
    [{ gossip: { peers: ['wss://10.0.0.2:7946/gossip?x=1'] } }, 'config.gossip.peers[0]'],
    [{ gossip: { peers: ['wss://10.0.0.2/gossip'] } }, 'config.gossip.peers[0]'],
    // Timers past Node's limit became 1 ms busy loops: every duration has a maximum.
    [{ gossip: { handshake_timeout_ms: 3_000_000_000 } }, 'config.gossip.handshake_timeout_ms'],
    [{ gossip: { idle_timeout_ms: 9e9 } }, 'config.gossip.idle_timeout_ms'],
    [{ gossip: { anti_entropy_ms: 2 ** 53 - 1 } }, 'config.gossip.anti_entropy_ms'],
    [{ grants: { sweep_ms: 3e9 } }, 'config.grants.sweep_ms'],
    [{ nft: { reconcile_ms: 1e12 } }, 'config.nft.reconcile_ms'],
    [{ gossip: { max_buffered_bytes: 1e12 } }, 'config.gossip.max_buffered_bytes'],
    [{ metrics: { listen: 'not an address' } }, 'config.metrics.listen'],
    [{ metrics: { listen: '127.0.0.1:99999' } }, 'config.metrics.listen'],
  ];
  for (const [data, field] of cases) {
    const err = codeOf(() => parseConfig(data));
    assert.is(err.code, 'ERR_INVALID_CONFIG', `tried ${JSON.stringify(data)}`);
    assert.ok(err.message.startsWith(field), `${err.message} should name ${field}`);
  }
});

test('[gossip] closed mode with an allowlist path is valid', () => {
  const g = parseConfig({ gossip: { mode: 'closed', allowlist: '/etc/meshnode/allow' } }).gossip;
  assert.is(g.mode, 'closed');
  assert.is(g.allowlist, '/etc/meshnode/allow');
});

// ---------------------------------------------------------------------------
// [nft] and [mesh] cidrs → the nft executor's options

const nftChild = (config: ReturnType<typeof parseConfig>) =>
  supervisorInput(config).children.find((c) => c.name === 'nft')!;

test('[nft] defaults: auto backend, table meshnode, /usr/sbin/nft, mesh CIDRs; applies may wait in numbers', () => {
  const config = parseConfig({});
  assert.equal(config.nft, {
    backend: 'auto',
    adopt_table: false,
    table: 'meshnode',
    nft: '/usr/sbin/nft',
    reconcile_ms: 60_000,
    check_ms: 2000,
    coalesce_ms: 2,
  });
  const child = nftChild(config);
  assert.equal(child.options, {
    stateDir: join(process.cwd(), 'var'),
    backend: 'auto',
    table: 'meshnode',
    adoptTable: false,
    nft: '/usr/sbin/nft',
    meshCidrs: ['10.0.0.0/8', 'fd00::/8'],
    reconcileMs: 60_000,
    checkMs: 2000,
    coalesceMs: 2,
  });
  assert.ok((child.mailbox?.concurrency ?? 0) >= 10_000);
});

test('the embedded defaults (no config file: npm start) keep grants in memory; a file gets auto', () => {
  assert.is(loadConfig(undefined, {}).nft.backend, 'memory');
  assert.is(parseConfig({}).nft.backend, 'auto');
});

test('config files are found in the order admins expect', () => {
  const has =
    (...paths: string[]) =>
    (p: string) =>
      paths.includes(p);
  const local = join(process.cwd(), 'meshnode.toml');
  assert.is(findConfig('/x.toml', { MESHNODE_CONFIG: '/y.toml' }, has(SYSTEM_CONFIG)), '/x.toml');
  assert.is(findConfig(undefined, { MESHNODE_CONFIG: '/y.toml' }, has(SYSTEM_CONFIG)), '/y.toml');
  assert.is(
    findConfig(undefined, { MESHNODE_CONFIG: '' }, has(SYSTEM_CONFIG)),
    undefined,
    'MESHNODE_CONFIG= forces the defaults',
  );
  assert.is(findConfig(undefined, {}, has(SYSTEM_CONFIG, local)), SYSTEM_CONFIG);
  assert.is(findConfig(undefined, {}, has(local)), local);
  assert.is(findConfig(undefined, {}, has()), undefined);
});

test('every problem of a config is reported at once, one per line', () => {
  try {
    parseConfig({ metrics: { listen: 'nonsense' }, gossip: { max_peers: -1 } });
    assert.unreachable('accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_INVALID_CONFIG');
    assert.match(
      (err as Error).message,
      /^2 problems:\n {2}config\.metrics\.listen .*\n {2}config\.gossip\.max_peers /,
    );
  }
});

test('[nft] and [mesh] become the nft actor options; [actors.nft] options still override', () => {
  const config = parseConfig({
    nft: { backend: 'memory', table: 'mesh2', coalesce_ms: 0, check_ms: 250 },
    mesh: { cidrs: ['10.99.0.0/16'] },
    actors: { nft: { options: { reconcileMs: 5 } } },
  });
  const o = nftChild(config).options as Record<string, unknown>;
  assert.equal(
    [o.backend, o.table, o.coalesceMs, o.checkMs, o.meshCidrs, o.reconcileMs],
    ['memory', 'mesh2', 0, 250, ['10.99.0.0/16'], 5],
  );
});

test('[nft] each bad field is refused with ERR_INVALID_CONFIG naming it', () => {
  const cases: Array<[unknown, string]> = [
    [{ nft: { backend: 'iptables' } }, 'config.nft.backend'],
    [{ nft: { table: 'Mesh' } }, 'config.nft.table'],
    [{ nft: { table: 'mesh; flush ruleset' } }, 'config.nft.table'],
    [{ nft: { table: 'a'.repeat(33) } }, 'config.nft.table'],
    [{ nft: { nft: 'nft' } }, 'config.nft.nft'],
    [{ nft: { nft: '/usr/sbin/nft -f /tmp/x' } }, 'config.nft.nft'],
    [{ nft: { nft: '$(reboot)' } }, 'config.nft.nft'],
    [{ nft: { reconcile_ms: 0 } }, 'config.nft.reconcile_ms'],
    [{ nft: { check_ms: 1.5 } }, 'config.nft.check_ms'],
    [{ nft: { coalesce_ms: -1 } }, 'config.nft.coalesce_ms'],
    [{ nft: { flush: true } }, 'config.nft'],
  ];
  for (const [data, field] of cases) {
    const err = codeOf(() => parseConfig(data));
    assert.is(err.code, 'ERR_INVALID_CONFIG', `tried ${JSON.stringify(data)}`);
    assert.ok(err.message.startsWith(field), `${err.message} should name ${field}`);
  }
});

test.run();
