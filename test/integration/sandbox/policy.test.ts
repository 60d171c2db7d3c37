/**
 * The policy gate (sandbox/policy.ts) over a real pool: the Authorize
 * message a policy sees, allow and deny with reasons, config order, and
 * every way a policy fails closed (throws, times out, no verdict, a
 * malformed verdict).
 */
import * as assert from 'uvu/assert';
import { PolicyGate } from '../../../sandbox/policy.js';
import type { AuthorizeInput } from '../../../sandbox/policy.js';
import { moduleFile } from '../../helpers/sandbox.js';
import { describe } from '../../helpers/test.js';

const test = describe('sandbox/policy', 15_000);

const NODE = 'did:key:z6MkNode';
const request: AuthorizeInput = {
  subscriber: 'did:key:z6MkSub',
  service: 'web',
  subscription: 'a'.repeat(64),
  sourceIp: '10.1.2.3',
  port: 443,
  proto: 'tcp',
};

async function withGate(
  policies: Array<[string, string]>,
  fn: (gate: PolicyGate) => Promise<void>,
): Promise<void> {
  const gate = await PolicyGate.start(NODE, {
    policies: policies.map(([name, source]) => ({ name, module: moduleFile(source, name) })),
    limits: { deadlineMs: 100 },
  });
  try {
    await fn(gate);
  } finally {
    await gate.close();
  }
}

test('no policy configured: allowed, and no pool is started', async () => {
  const gate = await PolicyGate.start(NODE, { policies: [] });
  assert.equal(await gate.authorize(request), { allow: true, reason: 'no policy configured' });
  assert.is(gate.sandbox, null);
  await gate.close();
});

test('the policy sees action Authorize, the request as tags, the node as sender and owner', async () => {
  const echo = `export function handle(msg, env) {
    return { allow: false, reason: JSON.stringify([msg.Action, msg.Subscriber, msg.Service,
      msg.Subscription.length, msg['Source-IP'], msg.Port, msg.Proto, msg.From, Owner, msg.Timestamp]) };
  }`;
  await withGate([['echo', echo]], async (gate) => {
    const v = await gate.authorize(request, 1_700_000_000_000);
    assert.is(v.allow, false);
    const seen = JSON.parse(v.reason.replace(/^echo denied: /, '')) as unknown[];
    assert.equal(seen, [
      'Authorize',
      request.subscriber,
      'web',
      64,
      '10.1.2.3',
      '443',
      'tcp',
      NODE,
      NODE,
      1_700_000_000_000,
    ]);
  });
});

test('allow and deny with the policy’s reason; the first that does not allow decides', async () => {
  const allow = `export function handle() { return { allow: true, reason: 'fine' }; }`;
  const deny = `export function handle(msg) {
    return msg.Service === 'db' ? { allow: false, reason: 'no db for guests' } : { allow: true, reason: 'ok' };
  }`;
  const never = `export function handle() { throw new Error('must not be asked'); }`;
  await withGate(
    [
      ['first', allow],
      ['second', deny],
      ['third', never],
    ],
    async (gate) => {
      assert.equal(await gate.authorize({ ...request, service: 'db' }), {
        allow: false,
        reason: 'second denied: no db for guests',
      });
      const all = await gate.authorize({ ...request, service: 'web' });
      assert.is(all.allow, false, 'the third policy fails, so it denies');
      assert.match(all.reason, /third failed: Error: must not be asked \(ERR_SANDBOX_HANDLER\)/);
      assert.equal(gate.sandbox!.stats().third!.evaluated, 1, 'asked only when the others allowed');
    },
  );
  await withGate([['only', allow]], async (gate) => {
    assert.equal(await gate.authorize(request), { allow: true, reason: 'allowed by only' });
  });
});

test('a policy that fails denies: throw, timeout, no verdict, a verdict that is not a boolean', async () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'throws',
      `export function handle() { throw new TypeError('bad'); }`,
      /throws failed: TypeError: bad/,
    ],
    [
      'loops',
      `export function handle() { for (;;) {} }`,
      /loops failed: .*deadline \(ERR_SANDBOX_TIMEOUT\)/,
    ],
    ['silent', `export function handle() {}`, /silent gave no verdict/],
    [
      'truthy',
      `export function handle() { return { allow: 'yes', reason: 'sure' }; }`,
      /truthy gave no verdict/,
    ],
    [
      'nomodule',
      `export const handle = 5;`,
      /nomodule failed: TypeError: the module exports no handle/,
    ],
  ];
  for (const [name, source, reason] of cases) {
    await withGate([[name, source]], async (gate) => {
      const v = await gate.authorize(request);
      assert.is(v.allow, false, name);
      assert.match(v.reason, reason);
    });
  }
});

test('a long reason is cut: the audit log is not the policy’s to fill', async () => {
  const long = `export function handle() { return { allow: false, reason: 'x'.repeat(5000) }; }`;
  await withGate([['long', long]], async (gate) => {
    const v = await gate.authorize(request);
    assert.ok(v.reason.length <= 201, String(v.reason.length));
  });
});

test.run();
