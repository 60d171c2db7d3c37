/**
 * The JavaScript that runs first in every fresh QuickJS realm, before the
 * process module. It is a function expression: the engine calls it with one
 * string (JSON of {msg, env, state, seed, boot}) and gets back `{start,
 * finish}`, which run the message. It shapes the realm into the AOS
 * environment:
 *
 *  - removes what would make a run depend on anything but the message:
 *    SharedArrayBuffer and Atomics (no shared memory or waiting),
 *    WeakRef and FinalizationRegistry (garbage collection made observable),
 *    WebAssembly if present. QuickJS itself has no require, no import()
 *    loader, no timers, no process, no fs, no network, no console;
 *  - Math.random draws from sfc32 seeded by the host from the message
 *    (the specification's generateSeed), so a replay draws the same numbers;
 *  - Date.now(), Date() and new Date() give the message's Timestamp: the
 *    only clock a process has;
 *  - `ao` (id, env, send, spawn, assign), `Owner`, and `State` (the process's
 *    own data, JSON, kept by the host between messages);
 *  - msg.reply and msg.forward with AOS semantics (the outbox library,
 *    LIBRARY below, is compiled only when first used).
 *
 * None of this is the security boundary — process code can overwrite any of
 * it in its own realm. The boundary is the engine (the realm has no host
 * object in it) plus the host's checks before and after (message.ts,
 * outbox.ts). What the prelude gives is the contract's behaviour.
 */
import { NON_FORWARDABLE_TAGS } from './types.js';

/**
 * The AOS outbox library, compiled inside the realm the first time a process
 * sends, spawns, assigns, replies or forwards (an indirect eval of this
 * text, captured before process code ran).
 */
const LIBRARY = String.raw`(function (ctx) {
  'use strict';
  const { msg, env, box } = ctx;
  const { stringify } = JSON;
  const { keys } = Object;
  const isArray = Array.isArray;
  const dataOf = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : stringify(v));
  const str = (v) => (typeof v === 'string' ? v : String(v));

  // Fields other than these become tags, as ao.send does in AOS.
  const FIELDS = ['Target', 'Data', 'Tags', 'Anchor'];
  function tagsOf(m) {
    const tags = [];
    if (isArray(m.Tags)) {
      for (const t of m.Tags) tags.push({ name: str(t && t.name), value: str(t && t.value) });
    } else if (m.Tags && typeof m.Tags === 'object') {
      for (const k of keys(m.Tags)) tags.push({ name: k, value: str(m.Tags[k]) });
    }
    for (const k of keys(m)) if (!FIELDS.includes(k)) tags.push({ name: k, value: str(m[k]) });
    return tags;
  }

  let reference = 0;
  function send(m) {
    if (!m || typeof m !== 'object') throw new TypeError('ao.send needs a message object');
    const out = { Target: str(m.Target), Data: dataOf(m.Data), Tags: tagsOf(m) };
    out.Tags.push({ name: 'Reference', value: String(++reference) });
    box().Messages.push(out);
    return out;
  }
  function spawn(module, m = {}) {
    const out = { Module: str(module), Data: dataOf(m.Data), Tags: tagsOf(m) };
    box().Spawns.push(out);
    return out;
  }
  function assign(assignment) {
    const processes = isArray(assignment && assignment.Processes) ? assignment.Processes : [];
    box().Assignments.push({ Processes: processes.map(str), Message: str(assignment && assignment.Message) });
  }

  const NON_FORWARDABLE = ${JSON.stringify(NON_FORWARDABLE_TAGS)};
  function reply(r = {}) {
    const m = { ...r };
    m.Target = msg['Reply-To'] || r.Target || msg.From;
    m['X-Reference'] = msg['X-Reference'] || msg.Reference || '';
    m['X-Origin'] = msg['X-Origin'] || '';
    return send(m);
  }
  function forward(target, f = {}) {
    // The original's fields (its extracted tags among them) ride along only where they may.
    const m = {};
    for (const k of keys(msg)) {
      if (!NON_FORWARDABLE.includes(k) && typeof msg[k] !== 'function') m[k] = msg[k];
    }
    Object.assign(m, f);
    m.Target = target;
    m['Reply-To'] = msg['Reply-To'] || msg.From;
    m['X-Reference'] = msg['X-Reference'] || msg.Reference || '';
    m['X-Origin'] = msg['X-Origin'] || '';
    m['Forwarded-By'] = env.Process.Id;
    return send(m);
  }
  return { send, spawn, assign, reply, forward };
})`;

export const PRELUDE = String.raw`(function (input) {
  'use strict';
  const G = globalThis;
  const { parse, stringify } = JSON;
  const { defineProperty, freeze } = Object;
  const { msg, env, state, seed, boot } = parse(input);

  for (const name of ['SharedArrayBuffer', 'Atomics', 'WeakRef', 'FinalizationRegistry', 'WebAssembly']) {
    delete G[name];
  }

  // sfc32: small, fast, good enough for a policy's dice, fully determined by the seed.
  let a = seed[0] | 0, b = seed[1] | 0, c = seed[2] | 0, d = seed[3] | 0;
  function random() {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  for (let i = 0; i < 12; i++) random();
  defineProperty(Math, 'random', { value: random, writable: false, configurable: false });

  // The message's timestamp is the clock. Reflect.construct keeps subclassing working.
  const RealDate = Date;
  const now = msg.Timestamp;
  function MessageDate(...args) {
    if (!new.target) return new RealDate(now).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [now] : args, new.target);
  }
  defineProperty(MessageDate, 'prototype', { value: RealDate.prototype, writable: false });
  defineProperty(MessageDate, 'now', { value: () => now, writable: true, configurable: true });
  defineProperty(MessageDate, 'parse', { value: RealDate.parse, writable: true, configurable: true });
  defineProperty(MessageDate, 'UTC', { value: RealDate.UTC, writable: true, configurable: true });
  // The real constructor must not stay reachable through new Date().constructor.
  defineProperty(RealDate.prototype, 'constructor', { value: MessageDate, writable: true, configurable: true });
  defineProperty(G, 'Date', { value: MessageDate, writable: true, configurable: true });

  // The outbox library (send, spawn, assign, reply, forward) is compiled on first use: most
  // policies only return a verdict and need not pay for compiling it in every fresh realm.
  const LIBRARY = ${JSON.stringify(LIBRARY)};
  let outbox = { Messages: [], Spawns: [], Assignments: [] };
  const compile = eval;
  let library;
  const lib = () => (library ??= compile(LIBRARY)({ msg, env, box: () => outbox }));
  const ao = {
    id: env.Process.Id,
    env,
    send: (m) => lib().send(m),
    spawn: (module, m) => lib().spawn(module, m),
    assign: (assignment) => lib().assign(assignment),
    clearOutbox() {
      outbox = { Messages: [], Spawns: [], Assignments: [] };
    },
  };
  defineProperty(G, 'ao', { value: ao, writable: true, configurable: true });
  defineProperty(G, 'Owner', { value: env.Process.Owner, writable: true, configurable: true });
  defineProperty(G, 'State', { value: state, writable: true, configurable: true });
  msg.reply = (r) => lib().reply(r);
  msg.forward = (target, f) => lib().forward(target, f);

  let settled = false, failed = false, value, error;
  return freeze({
    start(mod) {
      const handle = mod && mod.handle;
      if (typeof handle !== 'function') throw new TypeError('the module exports no handle(msg, env) function');
      const run = () => {
        if (boot) {
          if (typeof mod.boot === 'function') mod.boot(msg, env);
          else if (msg.Data !== '') G.State = parse(msg.Data);
        }
        return handle(msg, env);
      };
      Promise.resolve()
        .then(run)
        .then(
          (v) => { settled = true; value = v; },
          (e) => { settled = true; failed = true; error = e; },
        );
    },
    finish() {
      if (!settled) throw new Error('handle did not settle: it awaits something that never comes');
      if (failed) throw error;
      const result = stringify({
        Output: value === undefined ? {} : value,
        Messages: outbox.Messages,
        Spawns: outbox.Spawns,
        Assignments: outbox.Assignments,
      });
      // State that has no JSON form (a function, undefined) is kept as null, never as "undefined".
      const kept = stringify(G.State === undefined ? null : G.State);
      return [result, kept === undefined ? 'null' : kept];
    },
  });
})`;
