import * as assert from 'uvu/assert';
import { parseNftOptions } from '../../../actors/nft/options.js';
import { MeshError } from '../../../runtime/errors.js';
import { describe } from '../../helpers/test.js';

const test = describe('nft/options');

test('no options: every default', () => {
  assert.equal(parseNftOptions({}), {
    backend: 'auto',
    table: 'meshnode',
    adoptTable: false,
    nft: '/usr/sbin/nft',
    meshCidrs: ['10.0.0.0/8', 'fd00::/8'],
    coalesceMs: 2,
    reconcileMs: 60_000,
    checkMs: 2000,
  });
});

test('given options are kept', () => {
  const o = parseNftOptions({
    backend: 'memory',
    table: 'mesh2',
    coalesceMs: 0,
    stateDir: '/tmp/x',
  });
  assert.is(o.backend, 'memory');
  assert.is(o.table, 'mesh2');
  assert.is(o.coalesceMs, 0);
  assert.is(o.stateDir, '/tmp/x');
});

test('each bad field is ERR_INVALID_OPTION naming it', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ backend: 'iptables' }, 'options.backend'],
    [{ table: 'Mesh; flush ruleset' }, 'options.table'],
    [{ nft: 'nft' }, 'options.nft'],
    [{ nft: '/usr/sbin/nft; rm -rf /' }, 'options.nft'],
    [{ meshCidrs: [] }, 'options.meshCidrs'],
    [{ meshCidrs: '10.0.0.0/8' }, 'options.meshCidrs'],
    [{ meshCidrs: ['10.0.0.0/8', '10.1.2.3/8'] }, 'options.meshCidrs[1]'],
    [{ coalesceMs: -1 }, 'options.coalesceMs'],
    [{ reconcileMs: 0 }, 'options.reconcileMs'],
    [{ checkMs: 1.5 }, 'options.checkMs'],
    [{ stateDir: 7 }, 'options.stateDir'],
  ];
  for (const [input, field] of cases) {
    try {
      parseNftOptions(input);
      assert.unreachable(`${JSON.stringify(input)} was accepted`);
    } catch (err) {
      assert.instance(err, MeshError);
      assert.is((err as MeshError).code, 'ERR_INVALID_OPTION', JSON.stringify(input));
      assert.ok((err as Error).message.startsWith(`${field} `), (err as Error).message);
    }
  }
});

test.run();
