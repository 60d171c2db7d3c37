/**
 * What an offer would cut off (actors/grants/disruption.ts): tcp/22 always,
 * and any port with established connections, read from this namespace's
 * /proc/net/tcp{,6} — here with a real loopback connection.
 */
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import * as assert from 'uvu/assert';
import { disruption, establishedTo } from '../../../actors/grants/disruption.js';
import { describe } from '../../helpers/test.js';

const test = describe('grants/disruption');

test('tcp/22 is refused as SSH even with nothing connected; udp never is', () => {
  const none = () => 'sl local_address rem_address st\n';
  assert.match(disruption('tcp', 22, none)!.reason, /tcp\/22 is SSH.*--force/);
  assert.is(disruption('udp', 22, none), null);
  assert.is(disruption('tcp', 8080, none), null);
});

test('a port with a live connection names it; the port closed again, nothing', async () => {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = connect(port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  try {
    const peers = establishedTo(port, (p) => readFileSync(p, 'utf8'));
    assert.equal(peers, [`127.0.0.1:${client.localPort}`]);
    assert.match(
      disruption('tcp', port)!.reason,
      /1 established connection\(s\) to tcp\/\d+ would be dropped \(from 127\.0\.0\.1:\d+\)/,
    );
  } finally {
    client.destroy();
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
  }
  assert.is(disruption('tcp', port), null);
});

test('IPv6 remotes are shown as addresses; unreadable tables mean nothing known', () => {
  const v6 =
    'sl local_address rem_address st\n' +
    '0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 0\n' +
    '1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0\n';
  const read = (p: string) => {
    if (p.endsWith('tcp6')) return v6;
    throw new Error('ENOENT');
  };
  assert.equal(establishedTo(8080, read), ['[0:0:0:0:0:0:0:1]:54321']);
  // The same connection with nothing listening on 8080: our own outbound one.
  const outbound = (p: string) => (p.endsWith('tcp6') ? v6.split('\n').slice(0, 2).join('\n') : '');
  assert.equal(establishedTo(8080, outbound), []);
});

test.run();
