/**
 * The `meshnode` command as an operator and a script use it: every
 * command's --help, the --json envelope, and the exit codes (0 ok, 2 usage,
 * 3 node not running, 4 refused, 5 internal error), against a real node.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { cli, cliProcess, startNode } from '../../helpers/meshnode.js';
import type { CliResult, RunningNode } from '../../helpers/meshnode.js';
import { describe, tempDir, until } from '../../helpers/test.js';

const test = describe('supervisor/cli', 90_000);

/** Every command with arguments that make a well-formed request. */
const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const ID = 'f'.repeat(64);
const COMMANDS: Record<string, string[]> = {
  init: ['init'],
  start: ['start'],
  status: ['status'],
  actors: ['actors'],
  console: ['console'],
  peers: ['peers'],
  grants: ['grants'],
  offer: ['offer', '--service', 'web', '--port', '8080'],
  subscribe: ['subscribe', '--provider', DID, '--service', 'web'],
  approve: ['approve', ID],
  revoke: ['revoke', ID],
  activate: ['activate', ID],
  'journal tail': ['journal', 'tail'],
  'journal verify': ['journal', 'verify'],
  'journal forceSelfHead': ['journal', 'forceSelfHead'],
  'config check': ['config', 'check', '/dev/null'],
  restart: ['restart', 'nft'],
  kill: ['kill', 'nft'],
  inspect: ['inspect', 'nft'],
  unban: ['unban', DID],
  undial: ['undial', 'wss://192.0.2.1:7946/gossip'],
  'nft list': ['nft', 'list'],
  'nft plan': ['nft', 'plan'],
  'nft reconcile': ['nft', 'reconcile'],
  'audit verify': ['audit', 'verify'],
  doctor: ['doctor'],
  completion: ['completion', 'bash'],
  trace: ['trace', 'nft', '--ms', '10'],
  'log-level': ['log-level', 'info'],
  'mesh found': ['mesh', 'found', 'lab'],
  'mesh show': ['mesh', 'show'],
  invite: ['invite'],
  join: ['join', 'mni1.x.y'],
  members: ['members'],
  expel: ['expel', DID],
  nodes: ['nodes'],
  services: ['services'],
  subscriptions: ['subscriptions'],
  stop: ['stop'],
};
/** The commands that talk to a running node. */
const NODE_COMMANDS = Object.keys(COMMANDS).filter(
  (c) => !['init', 'start', 'console', 'config check', 'doctor', 'completion'].includes(c),
);

let node: RunningNode;
const on = (args: string[]) => [...args, '--socket', node.socket];

interface Envelope {
  v: number;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}
function envelope(r: CliResult, what: string): Envelope {
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, `${what}: one line on stdout: ${r.stdout}`);
  const e = JSON.parse(lines[0]!) as Envelope;
  assert.is(e.v, 1, `${what}: envelope version`);
  return e;
}

test.before(async () => {
  node = await startNode();
});

test.after(async () => {
  await node?.stop();
});

test('every command has --help: its usage and summary, exit 0', async () => {
  const results = await Promise.all(
    Object.entries(COMMANDS).map(
      async ([name, args]) => [name, await cli([...args, '--help'])] as const,
    ),
  );
  for (const [name, r] of results) {
    assert.is(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`usage: meshnode ${name}`), `${name}: ${r.stdout}`);
    assert.ok(r.stdout.trim().split('\n').length >= 3, `${name} has a summary`);
  }
  const top = await cli(['--help']);
  assert.is(top.code, 0);
  for (const name of Object.keys(COMMANDS))
    assert.ok(top.stdout.includes(name), `help lists ${name}`);
  assert.match(
    top.stdout,
    /exit codes: 0 ok, 1 node failed, 2 usage, 3 node not running, 4 refused, 5 internal error/,
  );
});

test('usage errors exit 2, with the envelope under --json', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no command', [], /command/],
    ['unknown command', ['frobnicate'], /unknown command frobnicate/],
    ['unknown option', ['status', '--frob'], /frob/],
    ['missing argument', ['approve'], /approve takes subscription/],
    ['extra argument', ['status', 'now'], /status takes no arguments/],
    ['missing required option', ['offer', '--port', '80'], /--service is required/],
    [
      'not a number',
      ['offer', '--service', 'x', '--port', 'eighty'],
      /--port must be a whole number/,
    ],
    ['negative number', ['journal', 'tail', '-n', '-5'], /-n needs a value/],
    [
      'negative number, attached',
      ['journal', 'tail', '--lines=-5'],
      /--lines must be a whole number/,
    ],
    [
      'a value not in the list',
      ['offer', '--service', 'x', '--port', '80', '--proto', 'sctp'],
      /--proto must be one of tcp, udp/,
    ],
    [
      'not a duration',
      ['status', '--watch', '--interval', 'soon'],
      /--interval must be a duration/,
    ],
    [
      '--watch on a command without it',
      ['offer', '--service', 'x', '--port', '80', '--watch'],
      /unknown option --watch/,
    ],
    [
      'config that does not load',
      ['status', '-c', '/nonexistent/meshnode.toml'],
      /cannot read config/,
    ],
  ];
  // One process per case and form, all at once: each CLI start costs most of a second.
  const runs = await Promise.all(
    cases.map(async ([, args]) => [await cli(args), await cli([...args, '--json'])] as const),
  );
  for (const [i, [what, , message]] of cases.entries()) {
    const [plain, json] = runs[i]!;
    assert.is(plain.code, 2, `${what}: exit code (${plain.stderr})`);
    assert.match(plain.stderr, message, what);
    assert.is(json.code, 2, `${what} --json`);
    const e = envelope(json, what);
    assert.is(e.ok, false);
    assert.ok(
      ['ERR_USAGE', 'ERR_INVALID_CONFIG'].includes(e.error!.code),
      `${what}: ${e.error!.code}`,
    );
    assert.match(e.error!.message, message, `${what} --json`);
  }
});

test('conventions admins expect: --version, typo suggestions in two lines, group help, every config problem at once with exit 2 from every command', async () => {
  const dir = tempDir('meshnode-cli-conf-');
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[metrics]\nlisten = "nonsense"\n[gossip]\nmax_peers = -1\n');
  const [version, typo, option, group, check, start, status, init, ok] = await Promise.all([
    cli(['--version']),
    cli(['stauts']),
    cli(['status', '--sockett', 'x']),
    cli(['journal', '--help']),
    cli(['config', 'check', bad]),
    cli(['start', '--config', bad]),
    cli(['status', '--config', bad]),
    cli(['init', '--config', bad]),
    cli(['config', 'check', '/dev/null']),
  ]);
  assert.is(version.code, 0);
  assert.match(version.stdout, /^meshnode \d+\.\d+\.\d+ \(node \d+/);
  assert.is(typo.code, 2);
  assert.match(typo.stderr, /unknown command stauts \(did you mean status\?\)/);
  assert.ok(typo.stderr.trim().split('\n').length <= 2, `a typo is two lines: ${typo.stderr}`);
  assert.match(option.stderr, /unknown option --sockett \(did you mean --socket\?\)/);
  assert.not.match(option.stderr, /Unknown option '/, "not Node's parseArgs text");
  assert.is(group.code, 0);
  assert.match(group.stdout, /journal tail/);
  for (const [what, r] of [
    ['config check', check],
    ['start', start],
    ['status', status],
    ['init', init],
  ] as const) {
    assert.is(r.code, 2, `${what}: exit 2 for an invalid config (${r.stderr})`);
    assert.match(r.stderr, /config\.metrics\.listen/, `${what}: the first problem`);
    assert.match(r.stderr, /config\.gossip\.max_peers/, `${what}: and the second`);
    assert.not.match(
      r.stdout + r.stderr,
      /"level"|at Object\./,
      `${what}: no log record, no stack`,
    );
  }
  assert.is(ok.code, 0);
  assert.match(ok.stdout, /is valid/);
  const missing = await cli(['status', '-c', '/nonexistent/meshnode.toml']);
  assert.is(
    (missing.stderr.match(/nonexistent\/meshnode\.toml/g) ?? []).length,
    1,
    'the path once',
  );
});

test('node not running: every node command exits 3 with ERR_NOT_RUNNING', async () => {
  const socket = join(tempDir(), 'nobody.sock');
  const results = await Promise.all(
    NODE_COMMANDS.map(
      async (name) =>
        [name, await cli([...COMMANDS[name]!, '--socket', socket, '--json'])] as const,
    ),
  );
  for (const [name, r] of results) {
    assert.is(r.code, 3, `${name}: ${r.stdout}${r.stderr}`);
    const e = envelope(r, name);
    assert.is(e.ok, false);
    assert.is(e.error!.code, 'ERR_NOT_RUNNING');
    assert.ok(e.error!.message.includes(socket));
  }
  const plain = await cli(['status', '--socket', socket]);
  assert.is(plain.code, 3);
  assert.match(plain.stderr, /^meshnode: ERR_NOT_RUNNING: no node is listening on /);
  assert.is(plain.stdout, '');
});

test("refused by the node: exit 4 with the node's code", async () => {
  const cases: Array<[string[], string]> = [
    [['approve', ID], 'ERR_BAD_REQUEST'],
    [['revoke', ID], 'ERR_BAD_REQUEST'],
    [['activate', ID], 'ERR_BAD_REQUEST'],
    [['restart', 'nosuch'], 'ERR_NO_ROUTE'],
    [['log-level', 'loud'], 'ERR_BAD_REQUEST'],
    [['trace', 'nft', '--count', '0'], 'ERR_BAD_REQUEST'],
    // A provider that offers nothing, a name nobody has, a token that is not one.
    [['subscribe', '--provider', DID, '--service', 'web'], 'ERR_NO_SUCH_SERVICE'],
    [['subscribe', '--provider', 'nosuchnode', '--service', 'web'], 'ERR_NOT_FOUND'],
    [['join', 'mni1.bm90LWEtdG9rZW4.AAAA'], 'ERR_INVITE_FORGED'],
    [['approve', 'abc'], 'ERR_BAD_REQUEST'],
    [['approve', 'abcdef12'], 'ERR_NOT_FOUND'],
  ];
  const runs = await Promise.all(
    cases.map(async ([args]) => [await cli(on([...args, '--json'])), await cli(on(args))] as const),
  );
  for (const [i, [args, code]] of cases.entries()) {
    const [json, plain] = runs[i]!;
    assert.is(json.code, 4, `${args.join(' ')}: ${json.stdout}${json.stderr}`);
    const e = envelope(json, args.join(' '));
    assert.is(e.ok, false);
    assert.is(e.error!.code, code, args.join(' '));
    assert.is(plain.code, 4);
    assert.match(plain.stderr, new RegExp(`^meshnode: ${code}: `));
  }
});

test('--json: one envelope {"v":1,"ok":true,"result":…} per command, exit 0', async () => {
  const ok = async (args: string[]) => {
    const r = await cli(on([...args, '--json']));
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const e = envelope(r, args.join(' '));
    assert.is(e.ok, true);
    assert.ok('result' in e);
    return e.result as Record<string, unknown>;
  };
  // journal verify prints progress events before its envelope: cli-verify.test.ts.
  const [status, actors, peers, grants, trace, level] = await Promise.all([
    ok(['status']),
    ok(['actors']),
    ok(['peers']),
    ok(['grants']),
    ok(['trace', 'nft', '--count', '1', '--ms', '50']),
    ok(['log-level', 'info']),
  ]);
  assert.is(status.pid, node.proc.pid);
  assert.is((actors as unknown as unknown[]).length, 4);
  assert.ok('peers' in peers);
  assert.equal(grants, { live: [], activations: [] });
  assert.ok(Array.isArray(trace));
  assert.equal(level, { level: 'info' });
  const offer = await ok(['offer', '--service', 'web', '--port', '8080', '--lease', '60']);
  assert.match(String(offer.id), /^[0-9a-f]{64}$/);
  const tail = (await ok(['journal', 'tail', '-n', '100'])) as unknown as Array<{
    id: string;
    entry: { kind: string; body: { service: string; leaseSeconds: number } };
  }>;
  // Found by id: the node's own record may be appended around it.
  const offered = tail.find((x) => x.id === offer.id)!;
  assert.is(offered.entry.kind, 'offer');
  assert.is(offered.entry.body.leaseSeconds, 60);
  assert.equal(await ok(['restart', 'nft']), { restarted: 'nft' });
  // Revoking our own entry, by a unique 8-digit prefix of its id.
  const revoked = await ok(['revoke', String(offer.id).slice(0, 8)]);
  assert.match(String(revoked.id), /^[0-9a-f]{64}$/);
  const rows = (await ok(['journal', 'tail', '-n', '100'])) as unknown as Array<{
    id: string;
    entry: { body: { target?: string } };
  }>;
  const revoke = rows.find((x) => x.id === revoked.id);
  assert.is(revoke?.entry.body.target, offer.id, 'the prefix named the whole id');
});

test('the directory commands: open until founded, then the mesh, its members, nodes, services and invites', async () => {
  const json = async (args: string[]) => {
    const r = await cli(on([...args, '--json']));
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return envelope(r, args.join(' ')).result as Record<string, unknown>;
  };
  const refused = async (args: string[], code: string) => {
    const r = await cli(on([...args, '--json']));
    assert.is(r.code, 4, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.is(envelope(r, args.join(' ')).error!.code, code, args.join(' '));
  };
  // Before founding: open, said so; invites and expulsions need a mesh.
  const before = await cli(on(['mesh', 'show']));
  assert.match(before.stdout, /^open: no mesh/);
  assert.match(
    (await cli(on(['status']))).stdout,
    /^mesh open: no mesh/m,
    'status says the node is open',
  );
  await refused(['invite'], 'ERR_NO_MESH');
  await refused(['expel', DID], 'ERR_NO_MESH');
  const founded = await json(['mesh', 'found', 'lab']);
  assert.match(String(founded.mesh), /^[0-9a-f]{64}$/);
  await refused(['mesh', 'found', 'again'], 'ERR_MESH_EXISTS');
  assert.match((await cli(on(['status']))).stdout, /^mesh lab [0-9a-f]{12}, closed, 1 members$/m);
  await json(['offer', '--service', 'nat', '--port', '2000', '--mode', 'auto', '--any-source']);
  assert.match(
    (await cli(on(['status']))).stdout,
    /^grants to any source \(no record IP check\) for: nat$/m,
    'status says which offers skip the record check',
  );
  const show = await cli(on(['mesh', 'show']));
  assert.match(show.stdout, new RegExp(`^mesh lab ${String(founded.mesh)}\nadmission closed\n`));
  // Members: the founder alone, every right.
  const members = await cli(on(['members']));
  assert.match(members.stdout, /^NAME\s+DID\s+RIGHTS\s+INVITED BY\n/);
  assert.match(
    members.stdout,
    /member\.invite,member\.expel,service\.offer,config\.publish,operator\.steer\s+founder/,
  );
  // Invites: a token, its rights and expiry; a bad duration is a usage error.
  const inv = await cli(on(['invite', '--rights', 'service.offer', '--expires', '2h']));
  assert.is(inv.code, 0, inv.stderr);
  assert.match(
    inv.stdout,
    /^mni1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}\n\nrights service\.offer, expires /,
  );
  assert.is((await cli(on(['invite', '--expires', 'soon']))).code, 2);
  await refused(['invite', '--rights', 'root'], 'ERR_BAD_REQUEST');
  // Services and nodes: this node's offer and record, as tables and as JSON pages.
  // Port 22 would cut SSH from every source not granted: refused without --force.
  await refused(
    ['offer', '--service', 'ssh', '--port', '22', '--mode', 'auto'],
    'ERR_OFFER_DISRUPTS',
  );
  await json(['offer', '--service', 'ssh', '--port', '22', '--mode', 'auto', '--force']);
  const services = await cli(on(['services']));
  assert.match(
    services.stdout,
    /^PROVIDER\s+DID\s+SERVICE\s+PORT\s+MODE\s+LEASE\s+MY SUBSCRIPTION\n/,
  );
  assert.match(services.stdout, /ssh\s+22\/tcp\s+auto/);
  const page = await json(['services', '--limit', '1']);
  assert.is((page.rows as unknown[]).length, 1);
  const nodes = await json(['nodes']);
  const self = (nodes.rows as Array<{ self: boolean; gossip: string }>).find((n) => n.self);
  assert.ok(self, 'this node lists its own record');
  assert.match(self!.gossip, /^wss:\/\/127\.0\.0\.1:\d+\/gossip$/);
  const table = await cli(on(['nodes']));
  assert.match(
    table.stdout,
    /^NAME\s+DID\s+ENDPOINT\s+MESH IP\s+VERSION\s+LINK\s+LAST SEEN\s+LAG\n/,
  );
  assert.match(table.stdout, /\(this node\)/);
  const subs = await cli(on(['subscriptions']));
  assert.match(subs.stdout, /^no subscriptions of or to this node\n$/);
  // Expelling a stranger, or a name nobody has: refused with their codes.
  await refused(['expel', DID], 'ERR_NOT_MEMBER');
  await refused(['expel', 'nobody'], 'ERR_NOT_FOUND');
});

test('human output: status and actors as text', async () => {
  const status = await cli(on(['status']));
  assert.is(status.code, 0);
  assert.match(
    status.stdout,
    new RegExp(
      `^meshnode \\d+\\.\\d+\\.\\d+, pid ${node.proc.pid}, up \\d+[smhd]\\S*\\nnode did:key:z6Mk\\w+\\n`,
    ),
  );
  assert.match(status.stdout, /^firewall (nft: grants enforced|memory: NOTHING ENFORCED)/m);
  assert.match(status.stdout, /journal\s+running\s+restarts 0/);
  assert.match(status.stdout, /^gossip TLS 1\.3, port \d+$/m, 'status says how links are secured');
  const actors = await cli(on(['actors']));
  assert.match(actors.stdout, /^ACTOR\s+STATE\s+RESTARTS\s+MAILBOX\s+HANDLED/);
  assert.is(actors.stdout.trim().split('\n').length, 5);
});

test('every verb prints text, not a JSON dump, without --json', async () => {
  const verbs: string[][] = [
    ['peers'],
    ['grants'],
    ['journal', 'tail', '-n', '3'],
    ['journal', 'verify'],
    ['nft', 'list'],
    ['nft', 'plan'],
    ['nft', 'reconcile'],
    ['audit', 'verify'],
    ['inspect', 'grants'],
    ['trace', 'nft', '--count', '1', '--ms', '50'],
    ['log-level', 'info'],
    ['unban', DID],
    ['undial', 'wss://192.0.2.1:7946/gossip'],
    ['members'],
    ['mesh', 'show'],
    ['nodes'],
    ['services'],
    ['subscriptions'],
  ];
  const runs = await Promise.all(verbs.map((v) => cli(on(v))));
  for (const [i, r] of runs.entries()) {
    const what = verbs[i]!.join(' ');
    assert.is(r.code, 0, `${what}: ${r.stderr}`);
    assert.not.match(r.stdout, /^\s*[[{]/, `${what} printed JSON: ${r.stdout}`);
    assert.not.match(r.stdout, /\b1[7-9]\d{11}\b/, `${what}: no epoch-millisecond times`);
  }
  const [tail, audit, inspect] = [runs[2]!, runs[7]!, runs[8]!];
  assert.match(tail.stdout, /^ARRIVAL\s+TIME\s+AUTHOR\s+SEQ\s+ID\s+KIND\s+BODY\n/);
  assert.match(tail.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'local clock times');
  assert.match(audit.stdout, /^admin\s+ok: \d+ records, chain intact/m);
  assert.match(inspect.stdout, /^actor\s+grants \(permanent\), running/m);
  assert.match(inspect.stdout, /^mailbox\s+\d+ waiting/m);
});

test('journal tail: -n N is the newest N, oldest of them first; --after pages forward; -f prints what arrives; Ctrl-C exits 0', async () => {
  const services = ['t1', 't2', 't3', 't4'];
  for (const [i, svc] of services.entries()) {
    const r = await cli(on(['offer', '--service', svc, '--port', String(2310 + i), '--json']));
    assert.is(r.code, 0, r.stderr);
  }
  type Row = { arrival: number; entry: { body: { service?: string } } };
  const last2 = envelope(await cli(on(['journal', 'tail', '-n', '2', '--json'])), 'tail -n 2')
    .result as Row[];
  assert.equal(
    last2.map((r) => r.entry.body.service),
    ['t3', 't4'],
    'the newest two, in arrival order',
  );
  assert.ok(last2[0]!.arrival < last2[1]!.arrival);
  const after = envelope(
    await cli(
      on(['journal', 'tail', '--after', String(last2[0]!.arrival - 2), '-n', '2', '--json']),
    ),
    'tail --after',
  ).result as Row[];
  assert.equal(
    after.map((r) => r.entry.body.service),
    ['t2', 't3'],
    'paging forward from an arrival',
  );
  assert.is(
    (await cli(on(['journal', 'tail', '-n', '1', '--after', '1', '--json']))).code,
    0,
    '-n caps a page',
  );
  const follow = cliProcess(on(['journal', 'tail', '-f', '-n', '1']));
  try {
    await until(() => follow.stdout.includes('service=t4'), 15_000, 'the newest entry first');
    assert.match(follow.stdout, /^ARRIVAL/);
    await cli(on(['offer', '--service', 'followed', '--port', '2301']));
    await until(
      () => follow.stdout.includes('service=followed'),
      15_000,
      'the new arrival printed',
    );
    assert.is((follow.stdout.match(/^ARRIVAL/gm) ?? []).length, 1, 'one header');
    follow.proc.kill('SIGINT');
    assert.is(await follow.exited, 0, `Ctrl-C ends -f with exit 0: ${follow.stderr}`);
  } finally {
    follow.proc.kill('SIGKILL');
  }
  const json = cliProcess(on(['journal', 'tail', '-f', '-n', '1', '--json']));
  try {
    await until(() => json.stdout.includes('\n'), 15_000, 'the first envelope');
    await cli(on(['offer', '--service', 'followed2', '--port', '2302']));
    await until(() => json.stdout.includes('followed2'), 15_000, 'the new arrival as an envelope');
    json.proc.kill('SIGINT');
    assert.is(await json.exited, 0);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok: boolean; result: Row });
    assert.ok(
      lines.length >= 2 && lines.every((l) => l.ok && typeof l.result.arrival === 'number'),
    );
  } finally {
    json.proc.kill('SIGKILL');
  }
});

test('--watch redraws status every --interval until Ctrl-C, which exits 0', async () => {
  const w = cliProcess(on(['status', '--watch', '--interval', '1s']));
  try {
    await until(() => (w.stdout.match(/^meshnode \d/gm) ?? []).length >= 2, 20_000, 'two redraws');
    w.proc.kill('SIGINT');
    assert.is(await w.exited, 0, w.stderr);
    assert.match(w.stdout, /\n\nmeshnode \d/, 'piped redraws set off by a blank line');
  } finally {
    w.proc.kill('SIGKILL');
  }
});

test('help: each option with its default and valid values, and examples', async () => {
  const [offer, tail, bare] = await Promise.all([
    cli(['offer', '--help']),
    cli(['journal', 'tail', '--help']),
    cli(['help', 'offer']),
  ]);
  assert.match(offer.stdout, /--proto PROTO\s+protocol \(one of tcp, udp; default tcp\)/);
  assert.match(offer.stdout, /--lease SECONDS\s+.*default 3600/);
  assert.match(offer.stdout, /--service NAME\s+.*required/);
  assert.match(offer.stdout, /examples:\n {2}meshnode offer --service web --port 8080/);
  assert.match(tail.stdout, /-n, --lines N\s+how many entries \(default 20\)/);
  assert.match(tail.stdout, /-f, --follow/);
  assert.is(bare.stdout, offer.stdout, 'meshnode help offer is offer --help');
});

test('completion bash: a script bash accepts, completing commands, group verbs, options and actors', async () => {
  const r = await cli(['completion', 'bash']);
  assert.is(r.code, 0);
  const script = join(tempDir(), 'meshnode.bash');
  writeFileSync(script, r.stdout);
  const complete = (words: string[]) =>
    execFileSync('bash', [
      '-c',
      `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _meshnode; echo "\${COMPREPLY[@]}"`,
    ])
      .toString()
      .trim();
  assert.is(complete(['meshnode', 'jou']), 'journal');
  assert.equal(complete(['meshnode', 'journal', 't']).split(' '), ['tail']);
  assert.match(complete(['meshnode', 'journal', 'tail', '--f']), /--follow/);
  assert.match(complete(['meshnode', 'offer', '--p']), /--port.*--proto|--proto.*--port/);
  assert.equal(complete(['meshnode', 'restart', 'g']).split(' ').sort(), ['gossip', 'grants']);
  assert.is((await cli(['completion', 'zsh'])).code, 2, 'an unknown shell is a usage error');
});

test('doctor: each check ok/warn/fail with the fix; a taken port fails it with exit 1', async () => {
  const r = await cli(on(['doctor', '--json', '-c', node.config]));
  const e = envelope(r, 'doctor');
  const checks = (e.result as { checks: Array<{ name: string; status: string; detail: string }> })
    .checks;
  const names = checks.map((c) => c.name);
  for (const n of [
    'config',
    'nft',
    'capabilities',
    'firewall',
    'admin socket',
    'gossip port',
    'disk',
    'clock',
  ])
    assert.ok(names.includes(n), `doctor checks ${n}: ${names.join(', ')}`);
  for (const c of checks) assert.ok(['ok', 'warn', 'fail'].includes(c.status), JSON.stringify(c));
  assert.is(checks.find((c) => c.name === 'admin socket')!.status, 'ok', JSON.stringify(checks));
  assert.is(r.code, checks.some((c) => c.status === 'fail') ? 1 : 0);
  // A node that is not running, whose gossip port something else holds.
  const holder = createServer();
  await new Promise<void>((res) => holder.listen(0, '127.0.0.1', res));
  const port = (holder.address() as { port: number }).port;
  const dir = tempDir('meshnode-doctor-');
  const conf = join(dir, 'meshnode.toml');
  writeFileSync(
    conf,
    `[node]\nstate_dir = "${dir}/var"\n[gossip]\nlisten = "127.0.0.1:${port}"\n[metrics]\nlisten = ""\n[nft]\nbackend = "memory"\n`,
  );
  try {
    const taken = await cli(['doctor', '-c', conf]);
    assert.is(taken.code, 1, taken.stdout + taken.stderr);
    assert.match(
      taken.stdout,
      new RegExp(`^fail\\s+gossip port\\s+127\\.0\\.0\\.1:${port} is in use`, 'm'),
    );
    assert.match(taken.stdout, /^\s+fix: ss -ltnp/m);
    assert.match(taken.stdout, /^warn\s+firewall\s+node not running/m);
  } finally {
    holder.close();
  }
});

test('init: state directory 0700 and a 0600 key, kept on a second run', async () => {
  const dir = tempDir();
  const config = join(dir, 'meshnode.toml');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(config, `[node]\nstate_dir = "${join(dir, 'state')}"\n`);
  const first = envelope(await cli(['init', '-c', config, '--json']), 'init');
  const r = first.result as { did: string; keyFile: string; created: boolean };
  assert.ok(r.created);
  assert.match(r.did, /^did:key:z6Mk/);
  assert.is(statSync(r.keyFile).mode & 0o777, 0o600);
  assert.is(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  const again = await cli(['init', '-c', config]);
  assert.is(again.code, 0);
  assert.is(again.stdout, `kept ${r.keyFile}\n${r.did}\n`);
});

test('init --new-mesh: the mesh is founded when the node first starts', async () => {
  const dir = tempDir('meshnode-newmesh-');
  const stateDir = join(dir, 'state');
  const config = join(dir, 'meshnode.toml');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    config,
    `[node]\nstate_dir = "${stateDir}"\n[metrics]\nlisten = ""\n[gossip]\nlisten = "127.0.0.1:0"\n[nft]\nbackend = "memory"\n`,
  );
  const init = await cli(['init', '-c', config, '--new-mesh', 'homelab']);
  assert.is(init.code, 0, init.stderr);
  assert.match(init.stdout, /mesh homelab \(closed\) is founded when the node first starts/);
  assert.is((await cli(['init', '-c', config, '--new-mesh', 'Bad Name'])).code, 4);
  const started = await startNode({ dir });
  try {
    const r = await cli(['mesh', 'show', '--socket', started.socket, '--json']);
    const m = envelope(r, 'mesh show').result as {
      name: string;
      founder: string;
      admission: string;
    };
    assert.is(m.name, 'homelab');
    assert.is(m.admission, 'closed');
    assert.ok(!existsSync(join(stateDir, 'found-mesh.json')), 'the founding request is done');
  } finally {
    await started.stop();
  }
});

test('an answer the CLI cannot use is an internal error: exit 5', async () => {
  const socket = join(tempDir(), 'odd.sock');
  // Answers every request with ok:false and no error code: not the admin protocol.
  const server: Server = createServer((s) =>
    s.on('data', () => s.write('{"v":1,"id":1,"ok":false}\n')),
  );
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r = await cli(['status', '--socket', socket, '--json']);
    assert.is(r.code, 5, r.stdout + r.stderr);
    assert.is(envelope(r, 'odd').error!.code, 'ERR_ADMIN');
  } finally {
    server.close();
  }
});

test('stop: exit 0, the node stops and its socket is gone; then status exits 3', async () => {
  const r = await cli(on(['stop', '--json']));
  assert.is(r.code, 0);
  assert.equal(envelope(r, 'stop').result, { stopping: true });
  assert.is(await node.exited, 0);
  assert.not.ok(existsSync(node.socket));
  assert.is((await cli(on(['status']))).code, 3);
});

test.run();
