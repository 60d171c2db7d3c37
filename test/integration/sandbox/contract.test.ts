/**
 * The AOS contract through the real pool: the specification's security
 * tests (untrusted message rejected, invalid assignment blocked, authority
 * verification, owner-only operations, boot from the owner only), its
 * functional ones (routing and replies, forwards, errors, outbox reset),
 * state kept by the host across messages and restarts, and determinism.
 */
import * as assert from 'uvu/assert';
import type { SandboxHost } from '../../../sandbox/host.js';
import { SandboxHost as Host } from '../../../sandbox/host.js';
import type { MessageInput, ProcessSpec } from '../../../sandbox/types.js';
import { OWNER, T, moduleFile, msg, proc, withHost } from '../../helpers/sandbox.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('sandbox/contract', 15_000);

const AUTHORITY = 'did:key:authority';
const STRANGER = 'did:key:stranger';

/** A small AOS process: a counter, an owner-only setting, replies, forwards, sends, spawns. */
const COUNTER = `
export function boot(msg) {
  State = { count: Number(JSON.parse(msg.Data).start), booted: true };
}
export function handle(msg, env) {
  switch (msg.Action) {
    case 'Add':
      State.count = (State.count ?? 0) + Number(msg.Amount ?? 1);
      msg.reply({ Action: 'Added', Count: String(State.count) });
      return { count: State.count };
    case 'Set-Limit':
      if (msg.From !== Owner) throw new Error('only the owner may set the limit');
      State.limit = Number(msg.Limit);
      return { limit: State.limit };
    case 'Relay':
      msg.forward('did:key:next', { Note: 'relayed' });
      return 'forwarded';
    case 'Fanout':
      ao.send({ Target: 'did:key:a', Action: 'Hello', Data: { n: 1 } });
      ao.send({ Target: 'did:key:b', Tags: [{ name: 'Action', value: 'Hello' }], Data: 'two' });
      ao.spawn('module-id', { Data: 'init', Tags: { Name: 'child' } });
      ao.assign({ Processes: ['did:key:c'], Message: msg.Id });
      return 'sent';
    case 'Forge':
      msg.reply({ From: Owner, Owner: Owner, Signature: 'forged', Timestamp: '1', Action: 'Forged' });
      return 'tried';
    case 'Fail-After-Send':
      ao.send({ Target: 'did:key:a', Action: 'Never' });
      State.count = -1000;
      throw new Error('something broke');
    case 'Hog': { const keep = []; for (;;) keep.push(new Array(65536).fill(0)); }
    case 'Info':
      return { id: ao.id, owner: Owner, env: env.Process.Id, module: env.Process.Tags.Module.length,
        tags: msg.Tags, from: msg.From, target: msg.Target, tagArray: msg.TagArray.length };
    default:
      return { state: State };
  }
}
`;

const spec = (extra: Partial<ProcessSpec> = {}) =>
  proc('counter', COUNTER, {
    authorities: [AUTHORITY],
    assignables: [{ Action: 'Add', From: OWNER }],
    ...extra,
  });

let host: SandboxHost;
test.before(() => {
  host = new Host({ processes: [spec()] });
});
test.after(() => host.close());

const run = (m: MessageInput) => host.evaluate('counter', m);

test('security: an untrusted message is rejected before any process code runs', async () => {
  const before = host.state('counter');
  const r = await run(msg('Add', { From: STRANGER }));
  assert.is(r.Error, 'Message is not trusted by this process!');
  assert.is(r.Code, 'ERR_SANDBOX_UNTRUSTED');
  assert.equal(r.Messages, []);
  assert.is(host.state('counter'), before);
  // A From tag does not help: tags never override the sender.
  const spoof = await run(msg('Add', { From: STRANGER, Tags: [{ name: 'From', value: OWNER }] }));
  assert.is(spoof.Code, 'ERR_SANDBOX_UNTRUSTED');
});

test('security: authority verification — an authority as sender or as signer is trusted', async () => {
  assert.is((await run(msg('Add', { From: AUTHORITY }))).Error, undefined);
  assert.is((await run(msg('Add', { From: 'did:key:proc', Owner: AUTHORITY }))).Error, undefined);
  assert.is(
    (await run(msg('Add', { From: 'did:key:proc', Owner: STRANGER }))).Code,
    'ERR_SANDBOX_UNTRUSTED',
  );
});

test('security: an assignment is blocked unless it matches an allowlisted pattern', async () => {
  const blocked = await run(msg('Set-Limit', { Target: 'did:key:other-process' }));
  assert.is(blocked.Error, 'Assignment is not trusted by this process!');
  assert.is(blocked.Code, 'ERR_SANDBOX_ASSIGNMENT');
  const fromAuthority = await run(msg('Add', { Target: 'did:key:other', From: AUTHORITY }));
  assert.is(fromAuthority.Code, 'ERR_SANDBOX_ASSIGNMENT', 'the pattern names the owner as From');
  const allowed = await run(msg('Add', { Target: 'did:key:other-process' }));
  assert.is(allowed.Error, undefined, JSON.stringify(allowed));
  // Default deny: a process with no patterns takes no assignment at all.
  await withHost({ processes: [spec({ name: 'strict', assignables: [] })] }, async (h) => {
    const r = await h.evaluate('strict', msg('Add', { Target: 'did:key:other-process' }));
    assert.is(r.Code, 'ERR_SANDBOX_ASSIGNMENT');
  });
});

test('security: owner-only operations — the owner may, an authority may not, a forged tag does not help', async () => {
  const owner = await run(msg('Set-Limit', { Tags: [{ name: 'Limit', value: '5' }] }));
  assert.equal(owner.Output, { limit: 5 });
  const authority = await run(
    msg('Set-Limit', { From: AUTHORITY, Tags: [{ name: 'Limit', value: '99' }] }),
  );
  assert.is(authority.Error, 'Error: only the owner may set the limit');
  const forged = await run(
    msg('Set-Limit', {
      From: AUTHORITY,
      Tags: [
        { name: 'Limit', value: '99' },
        { name: 'From', value: OWNER },
      ],
    }),
  );
  assert.is(forged.Error, 'Error: only the owner may set the limit');
  assert.is((JSON.parse(host.state('counter')) as { limit: number }).limit, 5);
});

test('security: boot only from the owner', async () => {
  await withHost({ processes: [spec({ name: 'fresh' })] }, async (h) => {
    const boot = (from: string) =>
      h.evaluate('fresh', {
        ...msg('Boot', { From: from, Data: JSON.stringify({ start: 40 }) }),
        Tags: [{ name: 'Type', value: 'Process' }],
      });
    const byAuthority = await boot(AUTHORITY);
    assert.is(byAuthority.Code, 'ERR_SANDBOX_BOOT');
    assert.is(byAuthority.Error, 'Only the owner may boot this process!');
    assert.is(h.state('fresh'), '{}', 'nothing booted');
    const byOwner = await boot(OWNER);
    assert.is(byOwner.Error, undefined, JSON.stringify(byOwner));
    assert.equal(JSON.parse(h.state('fresh')), { count: 40, booted: true });
    assert.equal((await h.evaluate('fresh', msg('Add'))).Output, { count: 41 });
  });
});

test('routing and replies: a reply goes to the sender (or Reply-To) from the process, with X-Reference', async () => {
  const r = await run(msg('Add', { Reference: '7', Tags: [{ name: 'Amount', value: '2' }] }));
  assert.is(r.Messages.length, 1);
  const reply = r.Messages[0]!;
  assert.is(reply.Target, OWNER);
  assert.is(reply.From, 'counter');
  const tags = Object.fromEntries(reply.Tags.map((t) => [t.name, t.value]));
  assert.is(tags.Action, 'Added');
  assert.is(tags['X-Reference'], '7');
  assert.is(tags.Reference, '1');
  const viaReplyTo = await run(msg('Add', { 'Reply-To': 'did:key:inbox' }));
  assert.is(viaReplyTo.Messages[0]!.Target, 'did:key:inbox');
});

test('non-extractable tags cannot be set on a reply: From is the process, no owner or signature claims', async () => {
  const r = await run(msg('Forge'));
  const reply = r.Messages[0]!;
  assert.is(reply.From, 'counter');
  const names = reply.Tags.map((t) => t.name);
  for (const reserved of ['From', 'Owner', 'Signature', 'Timestamp']) {
    assert.not.ok(names.includes(reserved), `${reserved} was stripped`);
  }
  assert.ok(names.includes('Action'));
});

test('forwards carry no non-forwardable tag of the original; Forwarded-By and Reply-To are set', async () => {
  const r = await run(
    msg('Relay', {
      From: AUTHORITY,
      Tags: [
        { name: 'Signature', value: 'original-sig' },
        { name: 'Nonce', value: '5' },
        { name: 'Pushed-For', value: 'x' },
        { name: 'Colour', value: 'blue' },
      ],
    }),
  );
  assert.is(r.Error, undefined, JSON.stringify(r));
  const fwd = r.Messages[0]!;
  assert.is(fwd.Target, 'did:key:next');
  assert.is(fwd.From, 'counter');
  const tags = Object.fromEntries(fwd.Tags.map((t) => [t.name, t.value]));
  assert.is(tags.Colour, 'blue');
  assert.is(tags.Note, 'relayed');
  assert.is(tags['Forwarded-By'], 'counter');
  assert.is(tags['Reply-To'], AUTHORITY);
  for (const gone of [
    'Signature',
    'Nonce',
    'Pushed-For',
    'Id',
    'Timestamp',
    'Block-Height',
    'From',
    'Owner',
  ]) {
    assert.is(tags[gone], undefined, `${gone} not forwarded`);
  }
});

test('sends, spawns and assignments come out in the contract shape', async () => {
  const r = await run(msg('Fanout'));
  assert.is(r.Output, 'sent');
  assert.equal(
    r.Messages.map((m) => [m.Target, m.From, m.Data]),
    [
      ['did:key:a', 'counter', '{"n":1}'],
      ['did:key:b', 'counter', 'two'],
    ],
  );
  assert.equal(r.Spawns, [
    { Module: 'module-id', Data: 'init', Tags: [{ name: 'Name', value: 'child' }] },
  ]);
  assert.is(r.Assignments.length, 1);
  assert.equal(r.Assignments[0]!.Processes, ['did:key:c']);
});

test('errors: captured into Error, no host detail, the outbox emptied, the state untouched', async () => {
  const before = host.state('counter');
  const r = await run(msg('Fail-After-Send'));
  assert.is(r.Error, 'Error: something broke');
  assert.is(r.Code, 'ERR_SANDBOX_HANDLER');
  assert.equal(r.Messages, [], 'what was sent before the throw does not leave');
  assert.is(host.state('counter'), before);
  const syntax = new Host({ processes: [proc('broken', 'export function handle( {')] });
  try {
    const s = await syntax.evaluate('broken', msg('x'));
    assert.is(s.Code, 'ERR_SANDBOX_HANDLER');
    assert.match(s.Error!, /^SyntaxError/);
    assert.not.match(s.Error!, /\/tmp|meshnode-sandbox|\.js/, 'no host path');
    const none = new Host({ processes: [proc('nohandle', 'export const x = 1;')] });
    try {
      assert.match((await none.evaluate('nohandle', msg('x'))).Error!, /exports no handle/);
    } finally {
      await none.close();
    }
  } finally {
    await syntax.close();
  }
});

test('outbox reset: each message starts with an empty outbox', async () => {
  assert.is((await run(msg('Fanout'))).Messages.length, 2);
  const next = await run(msg('Info'));
  assert.equal(next.Messages, []);
  assert.equal(next.Spawns, []);
  assert.equal(next.Assignments, []);
});

test('the message and environment a process sees: normalised tags, its id, owner and module', async () => {
  const r = await run(msg('Info', { Tags: [{ name: 'X', value: '1' }] }));
  const out = r.Output as Record<string, unknown>;
  assert.is(out.id, 'counter');
  assert.is(out.owner, OWNER);
  assert.is(out.env, 'counter');
  assert.is(out.module, 64, 'the module hash');
  assert.equal(out.tags, { Action: 'Info', X: '1' });
  assert.is(out.target, 'counter');
  assert.is(out.tagArray, 2);
});

test('state is the process’s own, kept by the host: it survives a pool thread’s restart and a new host', async () => {
  const dir = tempDir('meshnode-sandbox-state-');
  const file = moduleFile(COUNTER, 'persist');
  const specOf = { name: 'persist', module: file, owner: OWNER };
  await withHost({ processes: [specOf], stateDir: dir, limits: { deadlineMs: 50 } }, async (h) => {
    for (let i = 0; i < 2; i++) await h.evaluate('persist', msg('Add'));
    // Stuck in native code: the watchdog terminates the pool thread; the state is the host's.
    assert.is((await h.evaluate('persist', msg('Hog'))).Code, 'ERR_SANDBOX_TIMEOUT');
    assert.equal((await h.evaluate('persist', msg('Add'))).Output, { count: 3 });
  });
  await withHost({ processes: [specOf], stateDir: dir }, async (h) => {
    assert.equal((await h.evaluate('persist', msg('Add'))).Output, { count: 4 });
  });
});

test('State without a JSON form is kept as null; the process carries on', async () => {
  const source = `export function handle(msg) {
    if (msg.Action === 'Break') { State = () => 1; return 'broken'; }
    if (State === null) State = { fixed: true };
    return State;
  }`;
  await withHost({ processes: [proc('odd', source)] }, async (h) => {
    assert.is((await h.evaluate('odd', msg('Break'))).Output, 'broken');
    assert.is(h.state('odd'), 'null');
    assert.equal((await h.evaluate('odd', msg('Fix'))).Output, { fixed: true });
  });
});

test('determinism: the same message sequence gives byte-identical results in two fresh hosts', async () => {
  const source = `
    export function handle(msg) {
      State.draws = [...(State.draws ?? []), Math.random()];
      State.seen = (State.seen ?? 0) + 1;
      const d = new Date();
      msg.reply({ Action: 'Seen', Roll: String(Math.floor(Math.random() * 6) + 1) });
      return { n: State.seen, r: Math.random(), iso: d.toISOString(), now: Date.now(),
        keys: Object.keys(msg).sort(), draws: State.draws.length };
    }`;
  const sequence: MessageInput[] = Array.from({ length: 20 }, (_, i) => ({
    Id: `det-${i}`,
    From: i % 3 === 0 ? AUTHORITY : OWNER,
    Timestamp: T + i * 1000,
    'Block-Height': String(100 + i),
    Tags: [{ name: 'Action', value: 'Roll' }],
  }));
  const transcript = async () => {
    const file = moduleFile(source, 'dice');
    return withHost(
      { processes: [{ name: 'dice', module: file, owner: OWNER, authorities: [AUTHORITY] }] },
      async (h) => {
        const out: string[] = [];
        for (const m of sequence) out.push(JSON.stringify(await h.evaluate('dice', m)));
        out.push(h.state('dice'));
        return out.join('\n');
      },
    );
  };
  const [a, b] = [await transcript(), await transcript()];
  assert.is(a, b);
  assert.ok(a.includes(`"now":${T + 19_000}`), 'the clock is the message timestamp');
  const rolls = new Set(
    a
      .split('\n')
      .slice(0, 20)
      .map((l) => (JSON.parse(l) as { Output: { r: number } }).Output.r),
  );
  assert.ok(rolls.size > 15, 'different messages draw different numbers');
});

test.run();
