/**
 * The directory tables of the CLI (supervisor/cli-directory.ts): what peers
 * wrote is shown, never interpreted; members are picked by name or DID;
 * nodes are joined with gossip's link state.
 */
import * as assert from 'uvu/assert';
import {
  pickMember,
  renderNodes,
  renderServices,
  withLinks,
} from '../../../supervisor/cli-directory.js';
import { safe } from '../../../supervisor/cli-format.js';
import { MeshError } from '../../../runtime/errors.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/cli-directory');
const A = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const B = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH';

test('safe: escapes, control and bidi characters become ?, long values are cut', () => {
  assert.is(safe('wss://h\x1b[2J:1/g'), 'wss://h?[2J:1/g');
  assert.is(safe('a\u202eb\u2066c\x07'), 'a?b?c?');
  assert.is(safe(null), '-');
  assert.is(safe('x'.repeat(100), 10), `${'x'.repeat(9)}…`);
});

test('a hostile endpoint in a node record reaches the table without a single control character', () => {
  const out = renderNodes(
    withLinks(
      {
        rows: [
          {
            did: B,
            name: 'beta',
            gossip: 'wss://evil\x1b]0;pwned\x07:1/gossip',
            meshIp: '10.0.0.2',
            version: null,
            announcedAt: 0,
            member: true,
            self: false,
          },
        ],
        next: 'did:key:z6Mkzz',
        selfRecord: true,
      },
      { peers: [{ did: B, state: 'open', lastSeen: Date.now(), lag: { [A]: 2 } }] },
    ),
  );
  // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
  assert.not.match(out, /[\x00-\x08\x0b-\x1f\x7f]/);
  assert.match(
    out,
    /beta\s+did:key:z6MkpTHR8VNs…\s+wss:\/\/evil\?\]0;pwned\?:1\/gossip\s+10\.0\.0\.2\s+-\s+connected/,
  );
  assert.match(out, /more: --after did:key:z6Mkzz/);
});

test('a node without a record of its own is told why it is in no page, on every page', () => {
  const none = renderNodes(withLinks({ rows: [], next: null, selfRecord: false }, null));
  assert.match(
    none,
    /^no nodes in the directory yet\nthis node has no record: .*gossip\.advertise/,
  );
  const page = renderNodes(
    withLinks(
      {
        rows: [
          {
            did: B,
            name: 'beta',
            gossip: 'wss://10.0.0.2:7946/gossip',
            meshIp: '10.0.0.2',
            version: null,
            announcedAt: 0,
            member: true,
            self: false,
          },
        ],
        next: null,
        selfRecord: false,
      },
      null,
    ),
  );
  assert.match(page, /this node has no record/);
  const has = renderNodes(withLinks({ rows: [], next: null, selfRecord: true }, null));
  assert.not.match(has, /no record/);
});

test('services: the subscription state of this node, or -', () => {
  const out = renderServices({
    rows: [
      {
        offer: 'f'.repeat(64),
        provider: B,
        providerName: 'beta',
        service: 'ssh',
        port: 22,
        proto: 'tcp',
        mode: 'manual',
        leaseSeconds: 600,
        anySource: true,
        subscription: { id: 'a'.repeat(64), state: 'approved' },
      },
    ],
    next: null,
  });
  assert.match(
    out,
    /beta\s+\S+\s+ssh\s+22\/tcp\s+manual,any-source\s+600s\s+approved aaaaaaaaaaaa/,
  );
});

test('pickMember: by DID, unique name or DID prefix; ambiguous and unknown refused with codes', () => {
  const rows = [
    { did: A, name: 'alpha', expelled: null },
    { did: B, name: 'twin', expelled: null },
    { did: B.replace('pTHR', 'pTHS'), name: 'twin', expelled: null },
  ];
  assert.is(pickMember(rows, A), A);
  assert.is(pickMember(rows, 'alpha'), A);
  assert.is(pickMember(rows, A.slice(0, 20)), A);
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (err as MeshError).code;
    }
    return 'none';
  };
  assert.is(
    code(() => pickMember(rows, 'twin')),
    'ERR_AMBIGUOUS',
  );
  assert.is(
    code(() => pickMember(rows, 'ghost')),
    'ERR_NOT_FOUND',
  );
});

test.run();
