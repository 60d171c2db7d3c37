/**
 * Actor faults (issue 9), on the real node's four actors plus a probe actor
 * (test/fixtures/actors/probe.ts), under a steady load of admin asks to
 * every actor:
 *  - each built-in actor killed (as the admin `kill` does: its worker
 *    terminated, the restart policy applies), in turn;
 *  - the probe hung (a busy loop: only the heartbeat notices) and OOM'd
 *    (past its worker heap cap) — the built-ins have no hook for either;
 *  - restart intensity exceeded in a real node process by admin `kill`s
 *    under load: a clean exit 1, every admin request answered or its
 *    connection closed, none left hanging.
 * After each fault: the actor answers again (the recovery time is kill →
 * answering), the other actors kept answering during the fault, every ask
 * settled (Supervisor.pendingAdminAsks back to 0), and every failed ask
 * carried a code. Rounds: 2 under `npm test`, 10 with MESHNODE_LONG=1.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { AdminClient } from '../../supervisor/admin-client.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import { startNode as startInProcess } from '../helpers/journal.js';
import { CLI, ROOT } from '../helpers/meshnode.js';
import { jsonLines } from '../helpers/process.js';
import { PROBE } from '../helpers/supervisor.js';
import { describe, sleep, tempDir, until } from '../helpers/test.js';
import { LONG, report } from './report.js';

const ROUNDS = LONG ? 10 : 2;
const test = describe('reliability/faults', (LONG ? 900 : 120) * 1000);
const ASK_MS = 3000;
const CODE = /^ERR_[A-Z0-9_]+$/;

/** What the load asks of each actor: cheap reads that only that actor answers. */
const READS: Record<string, [string, unknown]> = {
  journal: ['status', undefined],
  nft: ['status', undefined],
  grants: ['grants', undefined],
  gossip: ['status', undefined],
  probe: ['ping', undefined],
};

interface Outcome {
  actor: string;
  at: number;
  ok: boolean;
  code?: string;
  ms: number;
}

class Load {
  readonly outcomes: Outcome[] = [];
  private running = true;
  private readonly loops: Array<Promise<void>> = [];

  constructor(private readonly sup: Supervisor) {
    for (const actor of Object.keys(READS)) this.loops.push(this.loop(actor));
    this.loops.push(this.appends());
  }

  private async loop(actor: string): Promise<void> {
    const [action, data] = READS[actor]!;
    while (this.running) {
      await this.one(actor, () => this.sup.ask(actor, action, data, { timeoutMs: ASK_MS }));
      await sleep(5);
    }
  }

  /** Appends through grants → journal: a write path that crosses two actors. */
  private async appends(): Promise<void> {
    let n = 0;
    while (this.running) {
      const k = n++;
      await this.one('grants.offer', () =>
        this.sup.ask(
          'grants',
          'offer',
          {
            service: `f${k}`,
            port: 1000 + (k % 60000),
            proto: 'tcp',
            mode: 'manual',
            leaseSeconds: 60,
          },
          { timeoutMs: ASK_MS },
        ),
      );
      await sleep(5);
    }
  }

  private async one(actor: string, fn: () => Promise<unknown>): Promise<void> {
    const t0 = Date.now();
    try {
      await fn();
      this.outcomes.push({ actor, at: t0, ok: true, ms: Date.now() - t0 });
    } catch (err) {
      const code = String((err as { code?: unknown }).code);
      this.outcomes.push({ actor, at: t0, ok: false, code, ms: Date.now() - t0 });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

async function answering(sup: Supervisor, actor: string, ms = 15_000): Promise<number> {
  const [action, data] = READS[actor]!;
  await until(
    async () => {
      try {
        await sup.ask(actor, action, data, { timeoutMs: 500 });
        return true;
      } catch {
        return false;
      }
    },
    ms,
    `${actor} answering again`,
  );
  return Date.now();
}

test('each actor killed, hung or OOM under load: restarted, the others keep serving, no ask left hanging', async () => {
  const dir = tempDir('meshnode-faults-');
  const node = await startInProcess(dir, {
    supervisor: { max_restarts: 1000, period_seconds: 10 },
    actors: {
      extra: [
        {
          name: 'probe',
          module: PROBE,
          links: [],
          heartbeat_interval_ms: 200,
          heartbeat_timeout_ms: 400,
          max_old_generation_mb: 32,
        },
      ],
    },
  });
  const sup = node.sup;
  const recoveries: Record<string, number[]> = {};
  const failures: string[] = [];
  let load: Load | undefined;
  try {
    load = new Load(sup);
    await sleep(300);
    const faults: Array<[string, string]> = [
      ['journal', 'kill'],
      ['nft', 'kill'],
      ['grants', 'kill'],
      ['gossip', 'kill'],
      ['probe', 'busy'],
      ['probe', 'oom'],
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [actor, how] of faults) {
        const restartsBefore = sup.info().find((c) => c.name === actor)!.restarts;
        const t0 = Date.now();
        if (how === 'kill') await sup.kill(actor, 'killed by the faults suite');
        else await sup.ask('probe', 'crash', { kind: how });
        const back = await answering(sup, actor);
        const key = `${actor} ${how}`;
        (recoveries[key] ??= []).push(back - t0);
        await until(
          () => sup.info().find((c) => c.name === actor)!.restarts > restartsBefore,
          5000,
          `${actor} counted as restarted`,
        );
        // The other actors kept answering during the fault window.
        const window = load.outcomes.filter((o) => o.at >= t0 && o.at <= back);
        for (const other of Object.keys(READS)) {
          if (other === actor) continue;
          const theirs = window.filter((o) => o.actor === other);
          const bad = theirs.filter((o) => !o.ok);
          if (bad.length > 0)
            failures.push(
              `${key}: ${other} failed ${bad.length}x (${bad[0]!.code}) during the fault`,
            );
        }
        await sleep(100);
      }
    }
  } finally {
    await load?.stop();
    const all = load?.outcomes ?? [];
    const errors = all.filter((o) => !o.ok);
    const uncoded = errors.filter((o) => !CODE.test(o.code ?? ''));
    const slowest = Math.max(0, ...all.map((o) => o.ms));
    const worst = Math.max(0, ...Object.values(recoveries).flat());
    report({
      suite: 'faults',
      iterations: Object.values(recoveries).flat().length,
      failures: failures.length + uncoded.length,
      worstRecoveryMs: worst,
      figures: {
        ...Object.fromEntries(
          Object.entries(recoveries).map(([k, v]) => [`${k} max ms`, Math.max(...v)]),
        ),
        asks: all.length,
        'failed asks': errors.length,
        'slowest ask ms': slowest,
      },
    });
    assert.equal(failures, [], 'the other actors kept serving');
    assert.equal(
      uncoded.map((o) => `${o.actor}: ${o.code}`),
      [],
      'every failed ask has a code',
    );
    assert.ok(
      slowest <= ASK_MS + 1000,
      `every ask settled within its timeout (slowest ${slowest} ms)`,
    );
    await until(() => sup.pendingAdminAsks === 0, 5000, 'no pending admin ask');
    await node.stop();
  }
});

test('restart intensity exceeded by admin kills under load: exit 1, every admin request settled', async () => {
  const dir = tempDir('meshnode-faults-intensity-');
  const stateDir = join(dir, 'state');
  const config = join(dir, 'meshnode.toml');
  writeFileSync(
    config,
    `[node]\nstate_dir = "${stateDir}"\n[supervisor]\nmax_restarts = 3\nperiod_seconds = 60\n[metrics]\nlisten = ""\n[gossip]\nlisten = ""\n[nft]\nbackend = "memory"\n`,
  );
  const proc = spawn(process.execPath, [CLI, 'start', '-c', config], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { lines } = jsonLines(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  try {
    await until(() => lines.some((l) => l.msg === 'meshnode ready'), 30_000, 'node ready');
    const load = await AdminClient.connect(join(stateDir, 'admin.sock'));
    const killer = await AdminClient.connect(join(stateDir, 'admin.sock'));
    let running = true;
    const settled: Array<{ ok: boolean; code?: string }> = [];
    const loop = (async () => {
      let n = 0;
      while (running && !load.closed) {
        const method = ['journal.status', 'grants', 'nft.status', 'peers', 'offer'][n++ % 5]!;
        const params =
          method === 'offer'
            ? { service: `i${n}`, port: 2000 + n, proto: 'tcp', mode: 'manual', leaseSeconds: 60 }
            : {};
        // Never awaited one by one: many in flight when the node goes down.
        const p = load.call(method, params, 20_000).then(
          () => settled.push({ ok: true }),
          (err: { code?: string }) => settled.push({ ok: false, code: err.code }),
        );
        if (n % 8 === 0) await p;
        await sleep(2);
      }
    })();
    const t0 = Date.now();
    for (const actor of ['grants', 'nft', 'grants', 'journal', 'gossip']) {
      try {
        await killer.call('kill', { actor }, 5000);
      } catch {
        break; // the node is going down
      }
      await sleep(300);
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => (timer = setTimeout(() => r('still running'), 20_000))),
    ]);
    clearTimeout(timer);
    running = false;
    await loop;
    // Every request on the load connection settled: answered, or failed when the node closed it.
    await until(() => load.closed, 5000, 'the load connection closed');
    killer.destroy();
    const hanging = (load as unknown as { waiting: Map<unknown, unknown> }).waiting.size;
    const uncoded = settled.filter((s) => !s.ok && !CODE.test(s.code ?? ''));
    const exitMs = Date.now() - t0;
    report({
      suite: 'faults intensity',
      iterations: 1,
      failures: code === 1 && hanging === 0 && uncoded.length === 0 ? 0 : 1,
      worstRecoveryMs: null,
      figures: {
        'exit code': String(code),
        'requests settled': settled.length,
        'failed with a code': settled.filter((s) => !s.ok).length,
        'kills → exit ms': exitMs,
      },
    });
    assert.is(code, 1, 'restart intensity exceeded: exit 1');
    assert.ok(
      lines.some((l) => l.msg === 'meshnode stopped' && l.code === 1),
      'stopped cleanly',
    );
    assert.is(hanging, 0, 'no admin request left waiting');
    assert.equal(uncoded, [], 'every failure has a code');
    assert.ok(settled.length > 0, 'the load ran');
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await exited;
  }
}, 60_000);

test.run();
