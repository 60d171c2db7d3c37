/**
 * The consumer's renewals (actors/grants/consumer.ts): a permanent refusal
 * ends the activation at once and is never retried; a transient one is
 * retried with a backoff that doubles up to its cap; an ungrant or revoke
 * arriving in the journal ends it before any renewal. Real timers, short
 * leases, fake ports (the provider's answers are what is under test here;
 * test/integration/grants/flow.test.ts runs the same over real links).
 */
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Activations } from '../../../actors/grants/activations.js';
import { Consumer } from '../../../actors/grants/consumer.js';
import type { ConsumerPorts } from '../../../actors/grants/consumer.js';
import type { ViewLookup } from '../../../actors/grants/lookup.js';
import type { GrantResult } from '../../../runtime/protocol/grants.js';
import { memoryLogger } from '../../helpers/supervisor.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe, sleep, tempDir, until } from '../../helpers/test.js';

const test = describe('grants/consumer', 20_000);

const me = keyOf(1).did;
const provider = keyOf(2).did;
const SUB = fakeId(1);

/** A lookup holding one subscription of ours, and whatever ungrants/revokes a test adds. */
function lookupWith(ended: { ungrant?: 'revoked' | 'withdrawn'; revoked?: boolean }): ViewLookup {
  return {
    subscription: (id: string) =>
      id === SUB ? { subscriber: me, provider, service: 'web' } : undefined,
    node: () => ({ gossip: 'wss://127.0.0.1:1/gossip', meshIp: '127.0.0.1' }),
    ungrant: () => ended.ungrant,
    revoked: () => ended.revoked === true,
  } as unknown as ViewLookup;
}

/** A provider that answers each grant request with the next of `answers` (the last repeats). */
function providerAnswering(answers: GrantResult[]): { ports: ConsumerPorts; requests: number[] } {
  const requests: number[] = [];
  let grant = 0;
  return {
    requests,
    ports: {
      grantNonce: () => Promise.resolve({ rid: 'r', nonce: 'n' }),
      sign: () => Promise.resolve({ did: me, sig: 's' }),
      grantRequest: () => {
        requests.push(Date.now());
        const a = answers[Math.min(requests.length - 1, answers.length - 1)]!;
        return Promise.resolve(
          a.ok ? { ...a, grant: fakeId(100 + ++grant), expires: Date.now() + 1500 } : a,
        );
      },
    },
  };
}

const OK: GrantResult = {
  ok: true,
  endpoint: { ip: '127.0.0.1', port: 443, proto: 'tcp' },
  grant: '',
  expires: 0,
};

function consumer(ports: ConsumerPorts, ended: Parameters<typeof lookupWith>[0] = {}) {
  const mem = memoryLogger('debug');
  const activations = new Activations(join(tempDir('meshnode-consumer-'), 'activations.json'));
  const c = new Consumer({
    me,
    lookup: lookupWith(ended),
    activations,
    ports,
    renewAt: 0.5,
    log: Object.assign(mem.logger, { enabled: (l: string) => mem.logger.isLevelEnabled(l) }),
    retry: { firstMs: 200, capMs: 800 },
  });
  return { c, activations, records: mem.records };
}

test('a renewal refused ERR_GRANT_REVOKED ends the activation: state revoked, one line, no retry', async () => {
  const p = providerAnswering([OK, { ok: false, code: 'ERR_GRANT_REVOKED', reason: 'revoked' }]);
  const { c, activations, records } = consumer(p.ports);
  try {
    await c.activate(SUB);
    // The lease is 1.5 s, renewed at half: the refusal comes ~1 s in.
    await until(() => activations.all()[0]?.state === 'revoked', 5_000, 'activation ended');
    assert.is(activations.all()[0]!.error?.code, 'ERR_GRANT_REVOKED');
    await sleep(1_500);
    assert.is(p.requests.length, 2, 'the activation and the one refused renewal, nothing after');
    assert.is(
      records.filter((r) => r.msg === 'activation ended by the provider; not renewing').length,
      1,
    );
    assert.is(records.filter((r) => r.msg === 'renewal failed; retrying').length, 0);
  } finally {
    c.stop();
  }
});

test('a transient refusal is retried with a doubling backoff up to the cap, then renews', async () => {
  const rate: GrantResult = { ok: false, code: 'ERR_GRANT_RATE', reason: 'rate' };
  const p = providerAnswering([OK, rate, rate, rate, rate, OK]);
  const { c, activations, records } = consumer(p.ports);
  try {
    await c.activate(SUB);
    await until(() => p.requests.length >= 6, 8_000, 'four retries and a success');
    const gaps = p.requests.slice(2, 6).map((t, i) => t - p.requests[i + 1]!);
    // 200, 400, 800, 800 ms (timers fire late on a loaded machine, never early).
    assert.ok(gaps[0]! >= 190 && gaps[1]! >= 390 && gaps[2]! >= 790 && gaps[3]! >= 790, `${gaps}`);
    assert.ok(gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, `backs off: ${gaps}`);
    await until(() => activations.all()[0]?.state === 'active', 2_000, 'active again');
    const warns = records.filter((r) => r.msg === 'renewal failed; retrying' && r.level === 40);
    assert.is(warns.length, 1, 'one warning when it starts failing, the retries at debug');
  } finally {
    c.stop();
  }
});

test('a link replaced by a duplicate mid-exchange (both ends dialed at once) is tried once more on the one kept; another failure is not', async () => {
  const p = providerAnswering([OK]);
  let nonces = 0;
  const failing = (code: string) => ({
    ...p.ports,
    grantNonce: () =>
      ++nonces === 1
        ? Promise.reject(Object.assign(new Error('replaced'), { code }))
        : p.ports.grantNonce('', undefined),
  });
  const { c } = consumer(failing('ERR_PEER_DUPLICATE'));
  try {
    const a = await c.activate(SUB);
    assert.is(a.state, 'active');
    assert.is(nonces, 2, 'the exchange ran again');
  } finally {
    c.stop();
  }
  nonces = 0;
  const other = consumer(failing('ERR_PROTOCOL'));
  try {
    let code = '';
    await other.c.activate(SUB).catch((err: { code: string }) => (code = err.code));
    assert.is(code, 'ERR_PROTOCOL');
    assert.is(nonces, 1, 'not retried at once (renewals have their own backoff)');
  } finally {
    other.c.stop();
  }
});

test('an ungrant arriving in the journal ends the activation before its renewal', async () => {
  const p = providerAnswering([OK]);
  const ended: { ungrant?: 'revoked' | 'withdrawn' } = {};
  const { c, activations } = consumer(p.ports, ended);
  try {
    await c.activate(SUB);
    ended.ungrant = 'withdrawn';
    c.journalOnAppended([{ id: fakeId(9), author: provider, seq: 3, kind: 'ungrant' }]);
    assert.is(activations.all()[0]!.state, 'revoked');
    assert.is(activations.all()[0]!.error?.code, 'ERR_GRANT_OFFER');
    await sleep(1_500);
    assert.is(p.requests.length, 1, 'no renewal after the end');
  } finally {
    c.stop();
  }
});

test('entries that end nothing leave the activation alone', async () => {
  const p = providerAnswering([OK]);
  const { c, activations } = consumer(p.ports);
  try {
    await c.activate(SUB);
    c.journalOnAppended([{ id: fakeId(9), author: provider, seq: 3, kind: 'revoke' }]);
    c.journalOnAppended([{ id: fakeId(10), author: provider, seq: 4, kind: 'offer' }]);
    assert.is(activations.all()[0]!.state, 'active');
  } finally {
    c.stop();
  }
});

test.run();
