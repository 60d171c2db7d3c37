/**
 * This node's own record (actors/gossip/record.ts): built from what the
 * operator set, or from a concrete listen address, never from a wildcard.
 */
import * as assert from 'uvu/assert';
import { ownRecord } from '../../../actors/gossip/record.js';
import { describe } from '../../helpers/test.js';

const test = describe('gossip/record');
const base = {
  nodeName: 'alpha',
  version: '0.1.0',
  advertise: '',
  meshIp: '',
  listen: '',
  path: '/gossip',
};

test('a concrete listen address: its URL (TLS or not) and its IP as the mesh IP', () => {
  assert.equal(ownRecord({ ...base, listen: '10.0.0.1:7946' }, 7946, true), {
    name: 'alpha',
    gossip: 'wss://10.0.0.1:7946/gossip',
    meshIp: '10.0.0.1',
    version: '0.1.0',
  });
  assert.is(
    ownRecord({ ...base, listen: '127.0.0.1:0' }, 40123, false)?.gossip,
    'ws://127.0.0.1:40123/gossip',
  );
  assert.equal(ownRecord({ ...base, listen: '[fd00::1]:7946' }, 7946, true)?.meshIp, 'fd00::1');
});

test('a wildcard or no listen address, and nothing advertised: no record', () => {
  assert.is(ownRecord({ ...base, listen: '0.0.0.0:7946' }, 7946, true), null);
  assert.is(ownRecord({ ...base, listen: '[::]:7946' }, 7946, true), null);
  assert.is(ownRecord(base, 0, true), null);
});

test('an advertised DNS name needs node.mesh_ip; with it, both as set', () => {
  const advertise = 'wss://alpha.example:7946/gossip';
  assert.is(ownRecord({ ...base, advertise, listen: '0.0.0.0:7946' }, 7946, true), null);
  assert.equal(ownRecord({ ...base, advertise, meshIp: '10.9.0.1' }, 7946, true), {
    name: 'alpha',
    gossip: advertise,
    meshIp: '10.9.0.1',
    version: '0.1.0',
  });
});

test.run();
