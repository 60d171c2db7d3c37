/**
 * Where the node's log lines go decides their form (supervisor/logger.ts):
 * journald gets `<N>` syslog priorities, so `journalctl -p err` filters;
 * a redirect that is not journald's stream gets plain JSON; pretty is a
 * readable line. Written to real files through real fds.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { createRootLogger, logFormat } from '../../../supervisor/logger.js';
import { describe, tempDir } from '../../helpers/test.js';

const test = describe('supervisor/logger');

function logTo(env: (fd: number) => NodeJS.ProcessEnv): string {
  const path = join(tempDir('meshnode-log-'), 'out');
  const fd = openSync(path, 'w');
  try {
    const log = createRootLogger('debug', undefined, env(fd), fd);
    log.debug({ n: 1 }, 'a debug line');
    log.info({ n: 2 }, 'an info line');
    log.warn({ n: 3 }, 'a warning');
    log.error({ n: 4 }, 'an error');
    log.fatal({ n: 5 }, 'the end');
  } finally {
    closeSync(fd);
  }
  return readFileSync(path, 'utf8');
}

const journalOf = (fd: number) => {
  const st = fstatSync(fd);
  return { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
};

test("on journald's stream each line carries its syslog priority: debug 7, info 6, warn 4, error 3, fatal 2", () => {
  const lines = logTo(journalOf).trim().split('\n');
  assert.is(lines.length, 5);
  assert.equal(
    lines.map((l) => /^<(\d)>\{/.exec(l)?.[1]),
    ['7', '6', '4', '3', '2'],
  );
  // What follows the prefix is the JSON record, whole.
  const rec = JSON.parse(lines[3]!.slice(3)) as { msg: string; n: number; level: number };
  assert.equal([rec.msg, rec.n, rec.level], ['an error', 4, 50]);
});

test('JOURNAL_STREAM naming another stream (a redirect under the unit) gets plain JSON lines', () => {
  const out = logTo(() => ({ JOURNAL_STREAM: '1:2' }));
  for (const line of out.trim().split('\n')) assert.ok(line.startsWith('{"level":'), line);
  assert.is(logFormat({ JOURNAL_STREAM: '1:2' }, 2), 'json');
});

test('pretty: one readable line per record with its level and message, no JSON', () => {
  const out = logTo(() => ({ MESHNODE_LOG_FORMAT: 'pretty', NO_COLOR: '1' }));
  const lines = out.trim().split('\n');
  assert.is(lines.length, 5);
  assert.match(lines[3]!, /ERROR.*an error/);
  assert.match(lines[1]!, /INFO.*an info line/);
  for (const line of lines) assert.not.ok(line.startsWith('{'), line);
});
test.run();
