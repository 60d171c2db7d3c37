/**
 * The policy hook end to end (issue 6): two real nodes on loopback, the
 * provider with an operator policy in its config. A policy that denies the
 * subscriber makes the grant request fail with ERR_GRANT_POLICY and the
 * policy's reason, and the firewall is never asked; a policy that times out
 * or throws denies too; the audit log says why each time. The same flow
 * for a service the policy allows reaches the firewall (the control).
 *
 * The nft executor is a memory stand-in (test/fixtures/sandbox/nft-memory.ts)
 * that records every request.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { writeKeyFile } from '../../../runtime/crypto/index.js';
import { parseConfig } from '../../../supervisor/config.js';
import { supervisorInput } from '../../../supervisor/config-specs.js';
import { Supervisor } from '../../../supervisor/supervisor.js';
import { keyOf } from '../../helpers/journal.js';
import { memoryLogger } from '../../helpers/supervisor.js';
import { describe, rejectsWith, tempDir, until } from '../../helpers/test.js';

const test = describe('sandbox/grants-policy', 60_000);

const NFT = fileURLToPath(new URL('../../fixtures/sandbox/nft-memory.js', import.meta.url));
const consumerKey = keyOf(42);

const POLICY = `
const DENIED = [${JSON.stringify(consumerKey.did)}];
export function handle(msg) {
  if (msg.Action !== 'Authorize') return { allow: false, reason: 'unexpected action' };
  if (msg.Service === 'slow') for (;;) {}
  if (msg.Service === 'broken') throw new Error('the policy has a bug');
  if (msg.Service === 'web' && DENIED.includes(msg.Subscriber)) {
    return { allow: false, reason: 'guests may not reach web (' + msg['Source-IP'] + ':' + msg.Port + '/' + msg.Proto + ')' };
  }
  State.allowed = (State.allowed ?? 0) + 1;
  return { allow: true, reason: 'welcome' };
}
`;

interface Node {
  sup: Supervisor;
  dir: string;
  did: string;
  port: number;
}

async function startNode(dir: string, extra: Record<string, unknown>): Promise<Node> {
  const input = supervisorInput(
    parseConfig({
      node: { state_dir: dir, log_level: 'warn' },
      metrics: { listen: '' },
      mesh: { cidrs: ['127.0.0.0/8'] },
      ...extra,
    }),
  );
  for (const c of input.children) if (c.name === 'nft') c.module = NFT;
  const sup = new Supervisor(input, { logger: memoryLogger('warn').logger });
  try {
    await sup.start();
  } catch (err) {
    await sup.stop('start failed');
    throw err;
  }
  const st = (await sup.ask('gossip', 'status')) as { did: string; listening: number };
  return { sup, dir, did: st.did, port: st.listening };
}

const gossip = (peers: string[]) => ({
  listen: '127.0.0.1:0',
  peers,
  anti_entropy_ms: 200,
  backoff_base_ms: 50,
  backoff_max_ms: 500,
  discover: false,
});

let provider: Node;
let consumer: Node;
const subscriptions: Record<string, string> = {};

test.before(async () => {
  const policyDir = tempDir('meshnode-policy-');
  const policyFile = join(policyDir, 'guests.js');
  writeFileSync(policyFile, POLICY);
  provider = await startNode(tempDir('meshnode-provider-'), {
    gossip: gossip([]),
    sandbox: { deadline_ms: 100 },
    policy: [{ name: 'guests', module: policyFile }],
  });
  const consumerDir = tempDir('meshnode-consumer-');
  await writeKeyFile(join(consumerDir, 'node.key'), consumerKey);
  consumer = await startNode(consumerDir, {
    gossip: gossip([`wss://127.0.0.1:${provider.port}/gossip`]),
  });
  assert.is(consumer.did, consumerKey.did);
  await until(
    async () => {
      const st = (await consumer.sup.ask('gossip', 'status')) as {
        selfSynced: boolean;
        peers: Array<{ state: string }>;
      };
      return st.selfSynced && st.peers.some((p) => p.state === 'open');
    },
    15_000,
    'the consumer connected and self-synced',
  );
  for (const [service, port] of [
    ['web', 8080],
    ['ssh', 2222],
    ['slow', 9001],
    ['broken', 9002],
  ] as const) {
    await provider.sup.ask('grants', 'offer', {
      service,
      port,
      proto: 'tcp',
      mode: 'auto',
      leaseSeconds: 600,
    });
  }
  // The consumer subscribes once it has the offers; the provider must have the subscriptions.
  await until(
    async () =>
      (await consumer.sup.ask('journal', 'view', {
        view: 'offersByService',
        key: `${provider.did} broken`,
      })) !== null,
    15_000,
    'the offers reached the consumer',
  );
  for (const service of ['web', 'ssh', 'slow', 'broken']) {
    const ack = (await consumer.sup.ask('grants', 'subscribe', {
      provider: provider.did,
      service,
    })) as { id: string };
    subscriptions[service] = ack.id;
  }
  await until(
    async () => {
      for (const id of Object.values(subscriptions)) {
        const v = await provider.sup.ask('journal', 'view', { view: 'subscriptions', key: id });
        if (v === null) return false;
      }
      return true;
    },
    15_000,
    'the subscriptions reached the provider',
  );
});

test.after(async () => {
  await Promise.all([consumer?.sup.stop('test over'), provider?.sup.stop('test over')]);
});

const activate = (service: string) =>
  consumer.sup.ask(
    'grants',
    'activate',
    { subscription: subscriptions[service] },
    { timeoutMs: 20_000 },
  );

const firewall = () =>
  provider.sup.ask('nft', 'elements') as Promise<{
    applies: number;
    elements: Array<{ proto: string; port: number; ip: string }>;
  }>;

function auditLines(): Array<Record<string, unknown>> {
  return readFileSync(join(provider.dir, 'audit', 'grants.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a policy that denies the subscriber: ERR_GRANT_POLICY with its reason, the nft set untouched', async () => {
  const before = await firewall();
  const err = await rejectsWith(activate('web'), 'ERR_GRANT_POLICY');
  assert.match(err.message, /guests denied: guests may not reach web \(127\.0\.0\.1:8080\/tcp\)/);
  const after = await firewall();
  assert.is(after.applies, before.applies, 'the executor was never asked to apply');
  assert.equal(after.elements, [], 'no element in any set');
  const line = auditLines().findLast((l) => l.service === 'web')!;
  assert.is(line.kind, 'decision');
  assert.is(line.allow, false);
  assert.is(line.code, 'ERR_GRANT_POLICY');
  assert.match(String(line.reason), /guests denied: guests may not reach web/);
  assert.is(line.subscriber, consumerKey.did);
});

test('a policy that times out denies, and the audit log says it timed out', async () => {
  const err = await rejectsWith(activate('slow'), 'ERR_GRANT_POLICY');
  assert.match(
    err.message,
    /guests failed: the handler ran past its 100 ms deadline \(ERR_SANDBOX_TIMEOUT\)/,
  );
  const line = auditLines().findLast((l) => l.service === 'slow')!;
  assert.is(line.code, 'ERR_GRANT_POLICY');
  assert.match(String(line.reason), /ERR_SANDBOX_TIMEOUT/);
  assert.equal((await firewall()).elements, []);
});

test('a policy that throws denies, with its error and no host detail', async () => {
  const err = await rejectsWith(activate('broken'), 'ERR_GRANT_POLICY');
  assert.match(err.message, /guests failed: Error: the policy has a bug \(ERR_SANDBOX_HANDLER\)/);
  const line = auditLines().findLast((l) => l.service === 'broken')!;
  assert.match(String(line.reason), /the policy has a bug/);
  assert.equal((await firewall()).elements, []);
});

test('control: a service the policy allows reaches the firewall', async () => {
  const activation = (await activate('ssh')) as { endpoint: { port: number } };
  assert.is(activation.endpoint.port, 2222);
  const fw = await firewall();
  assert.equal(fw.elements, [{ proto: 'tcp', port: 2222, ip: '127.0.0.1' }]);
  const line = auditLines().findLast((l) => l.service === 'ssh' && l.kind === 'decision')!;
  assert.is(line.allow, true);
  // The policy's state is its own and the host kept it.
  const state = JSON.parse(readFileSync(join(provider.dir, 'sandbox', 'guests.json'), 'utf8')) as {
    allowed: number;
  };
  assert.is(state.allowed, 1);
});

test.run();
