import * as assert from 'uvu/assert';
import { FORWARDS } from '../../../runtime/protocol/admin.js';
import { PROTOCOLS } from '../../../runtime/protocol/index.js';
import type { ActorName } from '../../../runtime/protocol/index.js';
import { withMesh } from '../../helpers/mesh.js';
import { describe, rejectsWith } from '../../helpers/test.js';

/**
 * The declarations in runtime/protocol/ are what the running actors serve:
 * the same actions, the same senders (the trust table cannot drift from the
 * handlers), and requests checked on arrival with ERR_BAD_REQUEST naming the
 * field, before any handler runs.
 */
const test = describe('supervisor/protocols', 60_000);

test('each actor serves exactly its declared actions, with the declared senders', async () => {
  await withMesh({ n: 1, topology: 'none' }, async (mesh) => {
    const sup = mesh.sup(0);
    for (const [actor, protocol] of Object.entries(PROTOCOLS)) {
      const served = (await sup.inspect(actor)).actions
        .map((a) => [a.action, [...a.authorities].sort()] as const)
        .sort(([a], [b]) => a.localeCompare(b));
      const declared = Object.entries(protocol)
        .map(([action, spec]) => [action, [...spec.from].sort()] as const)
        .sort(([a], [b]) => a.localeCompare(b));
      assert.equal(served, declared, actor);
    }
  });
});

test('a bad request is ERR_BAD_REQUEST naming the field, and the handler never runs', async () => {
  await withMesh({ n: 1, topology: 'none' }, async (mesh) => {
    const sup = mesh.sup(0);
    const before = (await sup.ask('journal', 'status')) as { entries: number };
    // Each: what was tried, and the field path the refusal must name.
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['journal', 'append', { kind: 'node', body: {}, requestId: 7 }, /journal\.append\.requestId/],
      ['journal', 'append', { kind: 'node', body: {}, requestId: 'a', extra: 1 }, /append\.extra/],
      ['journal', 'range', { author: 'x', from: -1 }, /journal\.range\.from/],
      ['journal', 'view', { view: 'passwords' }, /journal\.view\.view/],
      ['journal', 'heads', { limit: 0 }, /journal\.heads\.limit/],
      ['journal', 'get', { id: { $gt: '' } }, /journal\.get\.id/],
      ['journal', 'proof', { author: 'a', seq: 1, entries: [1, 2, 3] }, /journal\.proof\.entries/],
      ['grants', 'revoke', { target: ['x'] }, /grants\.revoke\.target/],
      ['grants', 'offer', { service: 'ssh', port: 22 }, /grants\.offer\.proto/],
      ['gossip', 'unban', { did: 'did:web:example.com' }, /gossip\.unban\.did/],
      ['gossip', 'undial', { url: '' }, /gossip\.undial\.url/],
    ];
    for (const [actor, action, data, field] of cases) {
      const err = await rejectsWith(sup.ask(actor, action, data), 'ERR_BAD_REQUEST');
      assert.match(err.message, field, `${actor}.${action} ${JSON.stringify(data)}`);
    }
    const after = (await sup.ask('journal', 'status')) as { entries: number };
    assert.is(after.entries, before.entries, 'no append ran');
    // The refusals were counted as rejected at the dispatcher, not handled.
    const stats = (await sup.inspect('journal')).stats;
    assert.ok(stats.rejected >= 7, `journal rejected ${stats.rejected}`);
  });
});

test('an action that takes no data refuses data, before its handler runs', async () => {
  await withMesh({ n: 1, topology: 'none' }, async (mesh) => {
    const sup = mesh.sup(0);
    // What was tried: a payload, an array and a non-empty object at no-data actions.
    for (const [actor, action, data] of [
      ['journal', 'identity', { did: 'did:key:z6MkForged' }],
      ['journal', 'forceSelfHead', ['x']],
      ['nft', 'status', 'now'],
      ['grants', 'status', { verbose: true }],
    ] as const) {
      const err = await rejectsWith(sup.ask(actor, action, data), 'ERR_BAD_REQUEST');
      assert.match(err.message, new RegExp(`${actor}\\.${action}: takes no data`));
    }
    // Absent and {} (what the admin API sends) are no data.
    assert.ok(
      ((await sup.ask('journal', 'identity')) as { did: string }).did.startsWith('did:key:'),
    );
    assert.ok(
      ((await sup.ask('journal', 'identity', {})) as { did: string }).did.startsWith('did:key:'),
    );
  });
});

test('every admin forward targets an action that lists admin among its senders', () => {
  for (const [method, f] of Object.entries(FORWARDS)) {
    const spec = (PROTOCOLS[f.actor as ActorName] as Record<string, { from: readonly string[] }>)[
      f.action
    ];
    assert.ok(spec, `${method}: ${f.actor}.${f.action} is declared`);
    assert.ok(spec.from.includes('admin'), `${method}: admin may send ${f.actor}.${f.action}`);
  }
});

test.run();
