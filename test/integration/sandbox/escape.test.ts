/**
 * Escape attempts through the real pool (issue 6): each must fail inside
 * the sandbox and leave the host as it was — no process, require, import,
 * host globalThis, constructor chain, prototype pollution of what was passed
 * in, eval or Function reaching out, timers, Atomics.wait or
 * SharedArrayBuffer — and the next message still runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { SandboxHost } from '../../../sandbox/host.js';
import type { ProcessResult } from '../../../sandbox/types.js';
import { msg, proc } from '../../helpers/sandbox.js';
import { SandboxHost as Host } from '../../../sandbox/host.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('sandbox/escape', 10_000);

const canary = join(tempDir('meshnode-escape-'), 'pwned');

/** One process; the Action tag picks the attempt. Each attempt returns what it saw, or throws. */
const ATTEMPTS = `
const attempts = {
  process: () => process.exit(7),
  processTypeof: () => typeof process,
  require: () => require('node:fs').writeFileSync(${JSON.stringify(canary)}, 'x'),
  importDynamic: async () => (await import('node:fs')).writeFileSync(${JSON.stringify(canary)}, 'x'),
  globalThis: () => {
    globalThis.pwned = true;
    return [typeof globalThis.process, typeof globalThis.require, typeof globalThis.Buffer,
      typeof globalThis.global, typeof globalThis.module, Object.getOwnPropertyNames(globalThis).includes('process')];
  },
  constructorChain: () => ({}).constructor.constructor('return process')(),
  constructorChainThis: function () { return this.constructor.constructor('return process')(); },
  constructorChainMsg: (msg) => msg.constructor.constructor('return globalThis')().process,
  pollute: (msg, env) => {
    msg.__proto__.polluted = 'yes';
    Object.prototype.polluted2 = 'yes';
    msg.Tags.__proto__.isAdmin = true;
    env.Process.Tags.__proto__.isAdmin = true;
    msg.TagArray.push({ name: 'Injected', value: 'x' });
    msg.From = 'someone-else';
    Array.prototype.push = () => 0;
    return JSON.parse('{"__proto__": {"polluted3": "yes"}, "ok": 1}');
  },
  eval: () => eval('typeof process + typeof require + typeof Buffer'),
  evalIndirect: () => (0, eval)('globalThis').process,
  functionCtor: () => new Function('return typeof process')(),
  functionRequire: () => Function('return require')()('fs'),
  setTimeout: () => setTimeout(() => {}, 0),
  setInterval: () => setInterval(() => {}, 1),
  setImmediate: () => setImmediate(() => {}),
  atomicsWait: () => Atomics.wait(new Int32Array(4), 0, 0, 1000),
  sharedArrayBuffer: () => new SharedArrayBuffer(1024),
  webAssembly: () => WebAssembly.Memory,
  realClock: () => [Date.now(), new Date().getTime(), new (new Date().constructor)().getTime(),
    new (Object.getPrototypeOf(new Date()).constructor)().getTime(), Date.parse(Date())],
  ok: () => 'still fine',
};
export function handle(msg, env) {
  return attempts[msg.Action](msg, env);
}
`;

let host: SandboxHost;
test.before(() => {
  host = new Host({ processes: [proc('escape', ATTEMPTS)], limits: { deadlineMs: 200 } });
});
test.after(() => host.close());

const attempt = (action: string): Promise<ProcessResult> => host.evaluate('escape', msg(action));

/** The host is untouched: no global, no prototype change, no file, still running. */
function hostUnharmed(): void {
  const probe: Record<string, unknown> = {};
  assert.is(probe.polluted, undefined);
  assert.is(probe.polluted2, undefined);
  assert.is(probe.polluted3, undefined);
  assert.is(probe.isAdmin, undefined);
  assert.is((globalThis as Record<string, unknown>).pwned, undefined);
  assert.is([1].push(2), 2, 'Array.prototype.push of the host is intact');
  assert.not.ok(existsSync(canary), 'no file was written');
  assert.is(process.exitCode, undefined);
}

async function refused(action: string, error: RegExp): Promise<void> {
  const r = await attempt(action);
  assert.is(r.Code, 'ERR_SANDBOX_HANDLER', `${action}: ${JSON.stringify(r)}`);
  assert.match(r.Error!, error, action);
  hostUnharmed();
}

test('process is not there: process.exit throws inside, the host keeps running', async () => {
  await refused('process', /ReferenceError: .*process/);
  assert.equal((await attempt('processTypeof')).Output, 'undefined');
});

test('require is not there', async () => {
  await refused('require', /ReferenceError: .*require/);
});

test('import() finds no module loader; a static import fails the module', async () => {
  await refused('importDynamic', /could not load module/);
  const r = await host.evaluate('escape-static', msg('x')).catch((e: Error) => e);
  assert.instance(r, Error, 'unknown process');
  const h = new Host({
    processes: [
      proc('static', `import fs from 'node:fs'; export function handle() { return fs; }`),
    ],
  });
  try {
    const s = await h.evaluate('static', msg('x'));
    assert.is(s.Code, 'ERR_SANDBOX_HANDLER');
    assert.match(s.Error!, /could not load module/);
    assert.not.match(s.Error!, /\/tmp|\/work|node_modules/, 'no host path in the error');
  } finally {
    await h.close();
  }
  hostUnharmed();
});

test("the realm's globalThis is not the host's: nothing of Node in it, writes stay inside", async () => {
  const r = await attempt('globalThis');
  assert.equal(r.Output, ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', false]);
  hostUnharmed();
});

test('the constructor chain reaches the realm Function, which has no process', async () => {
  await refused('constructorChain', /ReferenceError: .*process/);
  // Called as a method: `this` is the attempts object, its constructor chain the realm's Function.
  await refused('constructorChainThis', /ReferenceError: .*process/);
  const r = await attempt('constructorChainMsg');
  assert.equal(r.Output, {}, 'undefined comes back as the empty Output');
  hostUnharmed();
});

test('prototype pollution of the objects passed in stays in the realm', async () => {
  const input = msg('pollute');
  const before = structuredClone(input);
  const r = await host.evaluate('escape', input);
  assert.is(r.Error, undefined, JSON.stringify(r));
  assert.equal(r.Output, { ok: 1 }, 'a __proto__ key in the result is dropped');
  assert.equal(input, before, 'the caller’s message object is unchanged');
  hostUnharmed();
  // And the next message sees a clean realm again: nothing carried over.
  assert.equal((await attempt('processTypeof')).Output, 'undefined');
});

test('eval and Function compile realm code only', async () => {
  assert.equal((await attempt('eval')).Output, 'undefinedundefinedundefined');
  assert.equal((await attempt('evalIndirect')).Output, {});
  assert.equal((await attempt('functionCtor')).Output, 'undefined');
  await refused('functionRequire', /ReferenceError: .*require/);
});

test('no timers', async () => {
  await refused('setTimeout', /ReferenceError: .*setTimeout/);
  await refused('setInterval', /ReferenceError: .*setInterval/);
  await refused('setImmediate', /ReferenceError: .*setImmediate/);
});

test('no Atomics.wait, no SharedArrayBuffer, no WebAssembly', async () => {
  const started = Date.now();
  await refused('atomicsWait', /ReferenceError: .*Atomics/);
  assert.ok(Date.now() - started < 500, 'nothing waited');
  await refused('sharedArrayBuffer', /ReferenceError: .*SharedArrayBuffer/);
  await refused('webAssembly', /ReferenceError: .*WebAssembly/);
});

test('no clock but the message timestamp, however the Date constructor is reached', async () => {
  const r = await attempt('realClock');
  const T = msg('x').Timestamp;
  assert.equal(r.Output, [T, T, T, T, T]);
});

test('after every attempt the same pool still answers', async () => {
  assert.equal((await attempt('ok')).Output, 'still fine');
  hostUnharmed();
});

test.run();
