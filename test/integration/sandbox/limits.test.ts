/**
 * Limits through the real pool (issue 6): an infinite loop is stopped at its
 * deadline (+ 50 ms), an allocation bomb is a memory error, deep recursion
 * too, oversized results and state are refused, a full inbox refuses more —
 * and after each, the next message on the same pool succeeds.
 */
import * as assert from 'uvu/assert';
import type { SandboxHost } from '../../../sandbox/host.js';
import { SandboxHost as Host } from '../../../sandbox/host.js';
import { msg, proc } from '../../helpers/sandbox.js';
import { describe } from '../../helpers/test.js';

const test = describe('sandbox/limits', 30_000);

const DEADLINE = 100;

const BOMBS = `
export function handle(msg) {
  State.seen = (State.seen ?? 0) + 1;
  switch (msg.Action) {
    case 'Loop': for (;;) {}
    case 'AsyncLoop': return Promise.resolve().then(() => { for (;;) {} });
    case 'Regex': return /(a+)+$/.test('a'.repeat(40) + 'b');
    // One native call per iteration, each slow: the interrupt is rarely checked; the watchdog acts.
    case 'NativeHog': { const keep = []; for (;;) keep.push(new Array(65536).fill(keep.length)); }
    case 'Buffer': return new ArrayBuffer(64 << 20).byteLength;
    case 'Repeat': return 'x'.repeat(64 << 20).length;
    case 'Objects': { const keep = []; for (let i = 0;; i++) keep.push({ i, s: 'v' + i }); }
    case 'Concat': { let a = [1]; for (;;) a = a.concat(a); }
    case 'String': { let s = 'x'; for (;;) s += s; }
    case 'Recurse': { const f = (n) => f(n + 1) + 1; return f(0); }
    case 'BigOutput': return 'y'.repeat(100000);
    case 'BigState': State.blob = 'z'.repeat(300000); return 'ok';
    default: return { seen: State.seen };
  }
}
`;

let host: SandboxHost;
test.before(() => {
  host = new Host({
    processes: [
      proc('bombs', BOMBS),
      // The same code with time to spare: what stops it must be the memory cap.
      proc('hog', BOMBS, { limits: { deadlineMs: 10_000 } }),
    ],
    limits: {
      deadlineMs: DEADLINE,
      memoryBytes: 16 * 1024 * 1024,
      maxOutputBytes: 64 * 1024,
      maxStateBytes: 256 * 1024,
    },
  });
});
test.after(() => host.close());

async function nextSucceeds(): Promise<void> {
  const r = await host.evaluate('bombs', msg('Ping'));
  assert.is(r.Error, undefined, JSON.stringify(r));
}

test('warm-up: the pool answers', async () => {
  await nextSucceeds();
});

test('an infinite loop is a timeout within the deadline + 50 ms; the next message succeeds', async () => {
  for (const action of ['Loop', 'AsyncLoop', 'Regex']) {
    // Best of three: the bound is the mechanism's; a machine busy with other work only adds to it.
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const r = await host.evaluate('bombs', msg(action));
      took.push(performance.now() - started);
      assert.is(r.Code, 'ERR_SANDBOX_TIMEOUT', `${action}: ${JSON.stringify(r)}`);
      assert.match(r.Error!, /ran past its 100 ms deadline/);
      assert.equal(r.Messages, []);
      await nextSucceeds();
    }
    const best = Math.min(...took);
    assert.ok(
      best <= DEADLINE + 50,
      `${action} answered after ${took.map((t) => t.toFixed(1))} ms`,
    );
  }
});

test('a thread stuck in native code is terminated by the watchdog; the pool replaces it', async () => {
  const started = performance.now();
  const r = await host.evaluate('bombs', msg('NativeHog'));
  const took = performance.now() - started;
  assert.is(r.Code, 'ERR_SANDBOX_TIMEOUT', JSON.stringify(r));
  assert.ok(took < DEADLINE * 2 + 500 + 1000, `answered after ${took.toFixed(0)} ms`);
  await nextSucceeds();
});

test('an allocation bomb is a memory error; the next message succeeds', async () => {
  for (const action of ['Buffer', 'Repeat', 'Objects', 'Concat', 'String', 'Recurse']) {
    const r = await host.evaluate('hog', msg(action));
    assert.is(r.Code, 'ERR_SANDBOX_MEMORY', `${action}: ${JSON.stringify(r)}`);
    assert.match(r.Error!, /out of memory \(limit 16 MiB\)|stack overflow|maximum length/);
    const next = await host.evaluate('hog', msg('Ping'));
    assert.is(next.Error, undefined, JSON.stringify(next));
  }
});

test('a result over max output size is refused; so is state over its limit, which is not kept', async () => {
  const before = host.state('bombs');
  const out = await host.evaluate('bombs', msg('BigOutput'));
  assert.is(out.Code, 'ERR_SANDBOX_OUTPUT');
  assert.match(out.Error!, /result is \d+ bytes, over the 65536-byte limit/);
  const st = await host.evaluate('bombs', msg('BigState'));
  assert.is(st.Code, 'ERR_SANDBOX_OUTPUT');
  assert.match(st.Error!, /state is \d+ bytes/);
  assert.is(host.state('bombs'), before, 'no failed message changed the state');
  await nextSucceeds();
});

test('violations do not commit state: the count only moves on successful messages', async () => {
  const seen = (JSON.parse(host.state('bombs')) as { seen: number }).seen;
  await host.evaluate('bombs', msg('Loop'));
  await host.evaluate('bombs', msg('Recurse'));
  const r = await host.evaluate('bombs', msg('Ping'));
  assert.equal(r.Output, { seen: seen + 1 });
});

test('the inbox is bounded: past it messages are refused at once, the queued ones run', async () => {
  const inboxHost = new Host({
    processes: [
      proc(
        'slow',
        `export function handle() { const end = Date.now(); let i = 0; while (i < 2e5) i++; return i; }`,
      ),
    ],
    limits: { inbox: 4 },
  });
  try {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => inboxHost.evaluate('slow', msg('Work'))),
    );
    const full = results.filter((r) => r.Code === 'ERR_SANDBOX_INBOX_FULL');
    const ok = results.filter((r) => r.Error === undefined);
    assert.is(ok.length, 4, JSON.stringify(results.map((r) => r.Code ?? 'ok')));
    assert.is(full.length, 6);
    assert.match(full[0]!.Error!, /inbox of slow is full \(4 messages waiting\)/);
    assert.is((await inboxHost.evaluate('slow', msg('Again'))).Error, undefined, 'room again');
    assert.equal(inboxHost.stats().slow!.errors, { ERR_SANDBOX_INBOX_FULL: 6 });
  } finally {
    await inboxHost.close();
  }
});

test('a closed host refuses with ERR_STOPPING; an unknown process is ERR_SANDBOX_NO_PROCESS', async () => {
  const h = new Host({ processes: [proc('p', 'export function handle() {}')] });
  const unknown = await h.evaluate('nope', msg('x')).catch((e: { code: string }) => e.code);
  assert.is(unknown, 'ERR_SANDBOX_NO_PROCESS');
  await h.close();
  const closed = await h.evaluate('p', msg('x')).catch((e: { code: string }) => e.code);
  assert.is(closed, 'ERR_STOPPING');
});

test('a module that cannot be loaded is ERR_SANDBOX_MODULE at start', () => {
  for (const spec of [
    { name: 'missing', module: '/nonexistent/policy.js', owner: 'o' },
    { name: 'Bad Name', module: '/dev/null', owner: 'o' },
    { name: 'noowner', module: '/dev/null', owner: '' },
  ]) {
    try {
      new Host({ processes: [spec] });
      assert.unreachable(`${spec.name} loaded`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_SANDBOX_MODULE', spec.name);
    }
  }
});

test.run();
