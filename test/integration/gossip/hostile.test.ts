/**
 * Hostile peers against a real node (the built-in actors under a Supervisor,
 * gossip on a loopback port): a raw `ws` client written here speaks the
 * protocol by hand (actors/gossip/peer.ts) and misbehaves in one way per
 * test. Each case asserts how the node refuses it (the close code, CLOSE in
 * peer.ts, or the HTTP status), that nothing invalid reached the journal,
 * and that an honest peer is still served afterwards.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { CLOSE } from '../../../actors/gossip/peer.js';
import { sigFromString, sigToString } from '../../../runtime/domain/codec.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import { authBytes, publicKeyFromDid, sign, verify } from '../../../runtime/crypto/index.js';
import type { AuthTranscript, KeyPair } from '../../../runtime/crypto/index.js';
import {
  RAW_TLS,
  WIRE_VERSION,
  bindingOf,
  rawUrl,
  signTranscript,
  transcriptOf,
} from '../../helpers/gossip-wire.js';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import {
  Feed,
  append,
  bodies,
  fakeId,
  heads,
  idOf,
  keyOf,
  signWith,
  startNode,
} from '../../helpers/journal.js';
import type { RunningNode } from '../../helpers/journal.js';
import { describe, sleep, tempDir, until } from '../../helpers/test.js';

const test = describe('gossip/hostile', 30_000);

const HANDSHAKE_TIMEOUT_MS = 400;
const MAX_FRAME_BYTES = 64 * 1024;
const MAX_ENTRIES = 20;
const RATE = 200;
/** Also how long a want may go unanswered. */
const IDLE_TIMEOUT_MS = 1500;
const PATH = '/gossip';

/** The node's gossip config for these tests: small limits, so each is quick to reach. */
const gossipConfig = (extra: Record<string, unknown> = {}) => ({
  gossip: {
    listen: '127.0.0.1:0',
    discover: false,
    handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS,
    max_frame_bytes: MAX_FRAME_BYTES,
    max_entries_per_frame: MAX_ENTRIES,
    rate_frames_per_s: RATE,
    burst_frames: RATE,
    anti_entropy_ms: 1000,
    idle_timeout_ms: IDLE_TIMEOUT_MS,
    // Every raw client here is on 127.0.0.1; the per-address limit has its own test.
    max_peers_per_ip: 256,
    ...extra,
  },
});

// ---------------------------------------------------------------------------
// What the node's gossiper says about itself (mesh.describe())

interface PeerRow {
  did: string | null;
  state: 'handshake' | 'open' | 'closed';
  direction: 'in' | 'out';
  score: number;
}
interface BanRow {
  did: string;
  until: number;
  count: number;
  reason: string;
}
interface GossipStatus {
  did: string;
  listening: number;
  peers: PeerRow[];
  bans: BanRow[];
}

const gossipStatus = (sup: Supervisor) => sup.ask('gossip', 'status') as Promise<GossipStatus>;

async function scoreOf(sup: Supervisor, did: string): Promise<number | undefined> {
  return (await gossipStatus(sup)).peers.find((p) => p.did === did && p.state === 'open')?.score;
}

async function banOf(sup: Supervisor, did: string): Promise<BanRow | undefined> {
  return (await gossipStatus(sup)).bans.find((b) => b.did === did);
}

// ---------------------------------------------------------------------------
// The raw client

type RawFrame = Record<string, unknown> & { t: string };
interface Closed {
  code: number;
  reason: string;
}

/** Thrown by RawPeer.open when the node answers the upgrade with an HTTP status. */
class Refused extends Error {
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/**
 * One WebSocket to the node, with no protocol logic of its own: the test
 * sends what it likes and reads what the node sent, frame by frame.
 */
class RawPeer {
  /** Received text frames not yet taken, in arrival order. */
  readonly frames: RawFrame[] = [];
  readonly nonce = randomBytes(32).toString('base64url');
  readonly closed: Promise<Closed>;
  closeInfo: Closed | undefined;
  /** The node's hello, once `handshake` has read it. */
  nodeHello: RawFrame | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      try {
        this.frames.push(JSON.parse(String(data)) as RawFrame);
      } catch {
        // the node only sends JSON; ignore anything else
      }
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      }),
    );
  }

  static open(port: number, path = PATH, tls = true): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(rawUrl(port, path, '127.0.0.1', tls), {
        perMessageDeflate: false,
        maxPayload: 64 * 1024 * 1024,
        ...RAW_TLS,
      });
      const peer = new RawPeer(ws);
      ws.once('open', () => resolve(peer));
      ws.once('unexpected-response', (req, res) => {
        reject(new Refused(res.statusCode ?? 0));
        req.destroy();
      });
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next received frame of type `t` (taken out of `frames`). */
  async take(t: string, ms = 3000): Promise<RawFrame> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex((f) => f.t === t);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closeInfo) {
        throw new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) awaiting ${t}`);
      }
      if (Date.now() > end) throw new Error(`no ${t} frame within ${ms} ms`);
      await sleep(5);
    }
  }

  /** The close code, within `ms`. */
  async closeCode(ms = 3000): Promise<number> {
    const timeout = sleep(ms).then(() => ({ code: -1, reason: 'still open' }));
    return (await Promise.race([this.closed, timeout])).code;
  }

  /**
   * Our half of the handshake: read the node's hello, send ours claiming
   * `claim`, and an auth signed by `key` over the transcript (or `auth`
   * verbatim). Does not wait for the node to admit us.
   */
  async handshake(
    key: KeyPair,
    opts: { claim?: string; nonce?: string; auth?: RawFrame } = {},
  ): Promise<RawFrame> {
    const hello = await this.take('hello');
    this.nodeHello = hello;
    const did = opts.claim ?? key.did;
    const own = opts.nonce ?? this.nonce;
    this.send({ t: 'hello', versions: [WIRE_VERSION], did, nonce: own });
    const auth = opts.auth ?? {
      t: 'auth',
      version: WIRE_VERSION,
      sig: signAuth(key, this.transcript('initiator', { did, nonce: own })),
    };
    this.send(auth);
    return auth;
  }

  /** This connection's transcript: we dialed, so we are the initiator. */
  transcript(role: 'initiator' | 'responder', us: { did: string; nonce: string }): AuthTranscript {
    const hello = this.nodeHello!;
    return transcriptOf(
      role,
      us,
      { did: hello.did as string, nonce: hello.nonce as string },
      bindingOf(this.ws),
    );
  }

  /**
   * A complete, honest handshake: ours, then the node's auth checked over
   * our nonce, then the node's first version vector (sent once it admits us).
   */
  async session(key: KeyPair): Promise<RawFrame> {
    const sent = await this.handshake(key);
    const hello = this.nodeHello!;
    const theirs = await this.take('auth');
    const bytes = authBytes(this.transcript('responder', { did: key.did, nonce: this.nonce }));
    assert.ok(
      verify(sigFromString(theirs.sig as string), bytes, publicKeyFromDid(hello.did as string)),
      "the node's handshake signature verifies for its DID, its role, our nonce and this TLS session",
    );
    await this.take('vv');
    return sent;
  }

  /** Serve `feed` honestly: announce its head, answer the node's wants until it holds `upTo`. */
  async serve(feed: Feed, upTo = feed.seq): Promise<void> {
    this.send({ t: 'vv', heads: { [feed.did]: upTo }, more: false });
    for (let have = 0; have < upTo;) {
      const want = await this.take('want');
      assert.is(want.author, feed.did);
      assert.is(want.from, have + 1, 'the node asks from its head + 1');
      const entries = feed.entries.slice((want.from as number) - 1, want.to as number);
      this.send({ t: 'entries', author: feed.did, from: want.from, entries });
      have = want.to as number;
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

const signAuth = signTranscript;

/** Fresh deterministic keys: no two tests share a DID (bans are per DID). */
let nextKey = 10;
const freshKey = (): KeyPair => keyOf(nextKey++);

/** A feed of `n` entries by a fresh author. */
function freshFeed(n: number): Feed {
  const feed = new Feed(freshKey());
  feed.fill(n);
  return feed;
}

// ---------------------------------------------------------------------------
// The node under attack (one for most tests; the connection flood has its own)

let node: RunningNode;
let port: number;

test.before(async () => {
  node = await startNode(tempDir(), gossipConfig());
  port = (await gossipStatus(node.sup)).listening;
  assert.ok(port > 0, 'gossip is listening');
  await append(node.sup, 'own-1', 'node', bodies.node(1));
});

test.after(async () => {
  await node?.stop();
});

/**
 * The node still serves an honest peer: a fresh one completes the
 * handshake, hands over a new feed (which the journal takes), and reads a
 * feed back from the node.
 */
async function assertServesHonest(sup: Supervisor, p = port): Promise<void> {
  const honest = await RawPeer.open(p);
  try {
    await honest.session(freshKey());
    const feed = freshFeed(MAX_ENTRIES + 5); // two wants
    await honest.serve(feed);
    await until(
      async () => (await heads(sup))[feed.did] === feed.seq,
      5000,
      'the honest feed in the journal',
    );
    honest.send({ t: 'want', author: feed.did, from: 2, to: 3 });
    const answer = await honest.take('entries');
    assert.equal(answer.entries, feed.entries.slice(1, 3), 'the node serves what it holds');
  } finally {
    honest.close();
  }
}

/** The journal's heads before an attack, for assertJournalUnchanged. */
async function journalSnapshot(sup: Supervisor) {
  return { heads: await heads(sup) };
}

/** No feed moved, none of `forged` is stored, and the journal's own check passes. */
async function assertJournalUnchanged(
  sup: Supervisor,
  before: { heads: Record<string, number> },
  forged: Entry[] = [],
): Promise<void> {
  assert.equal(await heads(sup), before.heads, 'no feed moved');
  for (const e of forged) {
    assert.is(await sup.ask('journal', 'get', { id: idOf(e) }), null, 'the entry was not stored');
  }
  assert.equal(
    ((await sup.ask('journal', 'verify')) as { ok: boolean }).ok,
    true,
    'the journal verifies',
  );
}

// ---------------------------------------------------------------------------
// Before the handshake

test('an honest raw peer completes the handshake and syncs both ways', async () => {
  await assertServesHonest(node.sup);
  const status = await gossipStatus(node.sup);
  assert.is(status.bans.length, 0);
});

test('no handshake: the node closes with 4006 after handshake_timeout_ms', async () => {
  const before = await journalSnapshot(node.sup);
  const silent = await RawPeer.open(port);
  const t0 = Date.now();
  await silent.take('hello'); // the node speaks first; we never answer
  assert.is(await silent.closeCode(HANDSHAKE_TIMEOUT_MS + 2000), CLOSE.handshakeTimeout);
  const waited = Date.now() - t0;
  assert.ok(waited >= HANDSHAKE_TIMEOUT_MS - 50, `closed after ${waited} ms, not before`);
  assert.ok(waited < HANDSHAKE_TIMEOUT_MS + 1000, `closed after ${waited} ms, not long after`);

  // hello but no auth: the same timeout
  const half = await RawPeer.open(port);
  await half.take('hello');
  half.send({ t: 'hello', versions: [WIRE_VERSION], did: freshKey().did, nonce: half.nonce });
  await half.take('auth'); // the node answers with its proof, then waits for ours
  assert.is(await half.closeCode(HANDSHAKE_TIMEOUT_MS + 2000), CLOSE.handshakeTimeout);

  await until(
    async () => (await gossipStatus(node.sup)).peers.every((p) => p.state === 'open'),
    2000,
    'timed-out connections gone from the peer table',
  );
  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('a bad handshake signature is closed with 4001', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const random = await RawPeer.open(port);
  await random.handshake(key, {
    auth: { t: 'auth', version: WIRE_VERSION, sig: sigToString(randomBytes(64)) },
  });
  assert.is(await random.closeCode(), CLOSE.handshake);

  // A real signature by the right key, over the wrong bytes (no context line).
  const wrongBytes = await RawPeer.open(port);
  wrongBytes.nodeHello = await wrongBytes.take('hello');
  wrongBytes.frames.unshift(wrongBytes.nodeHello);
  const transcript = wrongBytes.transcript('initiator', { did: key.did, nonce: wrongBytes.nonce });
  const sig = sigToString(sign(key, new TextEncoder().encode(JSON.stringify(transcript))));
  await wrongBytes.handshake(key, { auth: { t: 'auth', version: WIRE_VERSION, sig } });
  assert.is(await wrongBytes.closeCode(), CLOSE.handshake);

  // An auth for a version that was not negotiated.
  const otherVersion = await RawPeer.open(port);
  otherVersion.nodeHello = await otherVersion.take('hello');
  otherVersion.frames.unshift(otherVersion.nodeHello);
  const t3 = otherVersion.transcript('initiator', { did: key.did, nonce: otherVersion.nonce });
  const sig3 = signAuth(key, { ...t3, version: WIRE_VERSION + 1 });
  await otherVersion.handshake(key, {
    auth: { t: 'auth', version: WIRE_VERSION + 1, sig: sig3 },
  });
  assert.is(await otherVersion.closeCode(), CLOSE.handshake);

  // The right bytes but the node's role (a proof the node itself would make).
  const wrongRole = await RawPeer.open(port);
  wrongRole.nodeHello = await wrongRole.take('hello');
  wrongRole.frames.unshift(wrongRole.nodeHello);
  const t4 = wrongRole.transcript('responder', { did: key.did, nonce: wrongRole.nonce });
  await wrongRole.handshake(key, {
    auth: { t: 'auth', version: WIRE_VERSION, sig: signAuth(key, t4) },
  });
  assert.is(await wrongRole.closeCode(), CLOSE.handshake);

  // The right bytes, bound to another TLS session (the exporter of a second connection).
  const other = await RawPeer.open(port);
  const wrongSession = await RawPeer.open(port);
  wrongSession.nodeHello = await wrongSession.take('hello');
  wrongSession.frames.unshift(wrongSession.nodeHello);
  const t5 = {
    ...wrongSession.transcript('initiator', { did: key.did, nonce: wrongSession.nonce }),
    binding: bindingOf(other.ws),
  };
  await wrongSession.handshake(key, {
    auth: { t: 'auth', version: WIRE_VERSION, sig: signAuth(key, t5) },
  });
  assert.is(await wrongSession.closeCode(), CLOSE.handshake);
  other.close();

  const status = await gossipStatus(node.sup);
  assert.not.ok(
    status.peers.some((p) => p.did === key.did),
    'an unproven DID never becomes a peer',
  );
  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('wrong DID: hello claims one DID, auth signed by another key, is closed with 4001', async () => {
  const before = await journalSnapshot(node.sup);
  const victim = freshKey();
  const attacker = freshKey();
  const claimed = await RawPeer.open(port);
  await claimed.handshake(attacker, { claim: victim.did }); // signer field says victim
  assert.is(await claimed.closeCode(), CLOSE.handshake);

  // The attacker's own DID in the transcript does not help either.
  const honestTranscript = await RawPeer.open(port);
  honestTranscript.nodeHello = await honestTranscript.take('hello');
  honestTranscript.frames.unshift(honestTranscript.nodeHello);
  const sig = signAuth(
    attacker,
    honestTranscript.transcript('initiator', {
      did: attacker.did,
      nonce: honestTranscript.nonce,
    }),
  );
  await honestTranscript.handshake(attacker, {
    claim: victim.did,
    auth: { t: 'auth', version: WIRE_VERSION, sig },
  });
  assert.is(await honestTranscript.closeCode(), CLOSE.handshake);

  const status = await gossipStatus(node.sup);
  assert.not.ok(status.peers.some((p) => p.did === victim.did));
  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('a replayed handshake (auth captured in one session, replayed in another) is closed with 4001', async () => {
  const before = await journalSnapshot(node.sup);
  const victim = freshKey();
  const first = await RawPeer.open(port);
  const captured = await first.session(victim); // an honest session, recorded on the wire
  assert.ok((await scoreOf(node.sup, victim.did)) !== undefined, 'the first session is open');
  first.close();
  await until(
    async () => (await scoreOf(node.sup, victim.did)) === undefined,
    2000,
    'the first session gone',
  );

  // The attacker replays the victim's hello (same DID, same nonce) and auth.
  const replay = await RawPeer.open(port);
  await replay.handshake(victim, { nonce: first.nonce, auth: captured });
  assert.is(await replay.closeCode(), CLOSE.handshake);

  // Replaying while the victim's session is still open fails the same way.
  const live = await RawPeer.open(port);
  const liveAuth = await live.session(victim);
  const concurrent = await RawPeer.open(port);
  await concurrent.handshake(victim, { nonce: live.nonce, auth: liveAuth });
  assert.is(await concurrent.closeCode(), CLOSE.handshake);
  assert.is(live.closeInfo, undefined, "the victim's own session is untouched");
  live.close();

  // Reflection: the node's own hello sent back to it.
  const mirror = await RawPeer.open(port);
  const nodeHello = await mirror.take('hello');
  mirror.send(nodeHello);
  assert.is(await mirror.closeCode(), CLOSE.self);

  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('a frame over max_frame_bytes is closed with 1009, before or after the handshake', async () => {
  const before = await journalSnapshot(node.sup);
  const big = JSON.stringify({ t: 'have', heads: {}, pad: 'x'.repeat(MAX_FRAME_BYTES) });

  const early = await RawPeer.open(port);
  await early.take('hello');
  early.sendRaw(big);
  assert.is(await early.closeCode(), 1009);

  const key = freshKey();
  const late = await RawPeer.open(port);
  await late.session(key);
  const feed = freshFeed(1);
  const entries = Array.from({ length: MAX_ENTRIES }, () => ({
    ...feed.at(1),
    body: { ...bodies.node(1), name: 'y'.repeat(4000) },
  }));
  const frame = JSON.stringify({ t: 'entries', author: feed.did, from: 1, entries });
  assert.ok(frame.length > MAX_FRAME_BYTES);
  late.sendRaw(frame);
  assert.is(await late.closeCode(), 1009);
  await until(async () => (await scoreOf(node.sup, key.did)) === undefined, 2000, 'the peer gone');
  // The node's side says 1009 too (ws reported it as 1006) and charges the sender.
  await until(
    () =>
      node.records.some(
        (r) => r.msg === 'peer offence' && r.peer === key.did && r.code === 'ERR_TOO_LARGE',
      ),
    2000,
    'the oversize frame charged to its sender',
  );

  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('garbage before the handshake is closed with 4000; after it, each costs score until a ban', async () => {
  const before = await journalSnapshot(node.sup);
  const early: Array<[string | Buffer, boolean, number]> = [
    ['not json at all', false, CLOSE.badFrame],
    [randomBytes(300), true, CLOSE.badFrame],
    [Buffer.from(JSON.stringify({ t: 'hello', versions: [2] })), true, CLOSE.badFrame],
    [JSON.stringify({ t: 'hello', versions: [2], did: 'did:key:zBad', nonce: 'x' }), false, 4000],
    // A well-formed frame out of turn is a failed handshake rather than garbage.
    [JSON.stringify({ t: 'vv', heads: {}, more: false }), false, CLOSE.handshake],
  ];
  for (const [data, binary, code] of early) {
    const peer = await RawPeer.open(port);
    await peer.take('hello');
    peer.sendRaw(data, binary);
    assert.is(await peer.closeCode(), code, `tried ${String(data).slice(0, 40)}`);
  }

  const key = freshKey();
  const late = await RawPeer.open(port);
  await late.session(key);
  const scores: number[] = [];
  const garbage: Array<[string | Buffer, boolean]> = [
    ['{"t":"have"', false],
    [randomBytes(64), true],
    [JSON.stringify({ t: 'gossip', heads: {} }), false],
  ];
  for (const [data, binary] of garbage) {
    late.sendRaw(data, binary);
    await until(
      async () => (await scoreOf(node.sup, key.did)) === (scores.at(-1) ?? 100) - 25,
      2000,
      'the score to drop by 25',
    );
    scores.push((await scoreOf(node.sup, key.did))!);
  }
  assert.equal(scores, [75, 50, 25]);
  late.send({ t: 'hello', versions: [WIRE_VERSION], did: key.did, nonce: late.nonce }); // a protocol offence: 10
  await until(async () => (await scoreOf(node.sup, key.did)) === 15, 2000, 'score 15');
  late.sendRaw('\u0000\u0000');
  assert.is(await late.closeCode(), CLOSE.banned);
  const ban = await banOf(node.sup, key.did);
  assert.ok(ban, 'the DID is banned');
  assert.is(ban!.count, 1);
  assert.ok(ban!.until > Date.now() + 30_000, 'for a while');

  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

// ---------------------------------------------------------------------------
// After the handshake: what the hostile peer hands over as entries

test('forged entries are refused by the journal, cost score, and a repeat gets the DID banned (4004)', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const hostile = await RawPeer.open(port);
  await hostile.session(key);
  const author = freshFeed(3); // a feed the hostile peer does not own
  const forged = author.entries.map((e) => {
    const { sig: _sig, ...unsigned } = e;
    return signWith(key, unsigned);
  });

  hostile.send({ t: 'vv', heads: { [author.did]: 3 }, more: false });
  let want = await hostile.take('want');
  assert.equal(
    { author: want.author, from: want.from, to: want.to },
    { author: author.did, from: 1, to: 3 },
  );
  hostile.send({ t: 'entries', author: author.did, from: 1, entries: forged });
  await until(async () => (await scoreOf(node.sup, key.did)) === 50, 3000, 'score 50');
  await assertJournalUnchanged(node.sup, before, forged);

  // Again, with a single bad byte in an otherwise valid signature.
  hostile.send({ t: 'have', heads: { [author.did]: 3 } });
  want = await hostile.take('want');
  const flipped = author.entries.map((e) => ({ ...e }));
  const sig = Buffer.from(sigFromString(flipped[2]!.sig));
  sig[10] = sig[10]! ^ 1;
  flipped[2]!.sig = sigToString(sig);
  hostile.send({ t: 'entries', author: author.did, from: 1, entries: flipped });
  assert.is(await hostile.closeCode(), CLOSE.banned);
  const ban = await banOf(node.sup, key.did);
  assert.ok(ban, 'banned');
  assert.ok(ban!.reason.startsWith('invalidEntry'), ban!.reason);
  await assertJournalUnchanged(node.sup, before, [...forged, flipped[2]!]);
  assert.is(
    (await heads(node.sup))[author.did],
    undefined,
    'not even the valid first two entries of the refused batch',
  );

  // The same DID coming back is refused after proving itself.
  const back = await RawPeer.open(port);
  await back.handshake(key);
  assert.is(await back.closeCode(), CLOSE.banned);

  // The honest holder of that feed is then served normally.
  const honest = await RawPeer.open(port);
  await honest.session(freshKey());
  await honest.serve(author);
  await until(
    async () => (await heads(node.sup))[author.did] === 3,
    3000,
    'the real feed ingested',
  );
  honest.close();
  assert.is(
    await node.sup.ask('journal', 'get', { id: author.idAt(3) }).then((e) => (e as Entry).sig),
    author.at(3).sig,
  );
  await assertServesHonest(node.sup);
});

test('entries with valid signatures but a broken prev are refused by the journal and cost score', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const hostile = await RawPeer.open(port);
  await hostile.session(key);
  // The hostile peer is the author: every signature is its own and valid.
  const feed = new Feed(key);
  const e1 = feed.push('node', bodies.node(1));
  const e2 = signWith(key, {
    v: 1,
    author: key.did,
    seq: 2,
    prev: fakeId(7),
    ts: e1.ts + 1,
    kind: 'node',
    body: bodies.node(2),
  });
  hostile.send({ t: 'vv', heads: { [key.did]: 2 }, more: false });
  const want = await hostile.take('want');
  assert.equal([want.from, want.to], [1, 2]);
  hostile.send({ t: 'entries', author: key.did, from: 1, entries: [e1, e2] });
  await until(async () => (await scoreOf(node.sup, key.did)) === 90, 3000, 'score 90');
  await assertJournalUnchanged(node.sup, before, [e1, e2]);

  // A prev naming a real entry, but of another feed, is no better.
  const elsewhere = freshFeed(1).at(1);
  const e2b = signWith(key, { ...e2, prev: idOf(elsewhere) } as never);
  hostile.send({ t: 'have', heads: { [key.did]: 2 } });
  await hostile.take('want');
  hostile.send({ t: 'entries', author: key.did, from: 1, entries: [e1, e2b] });
  await until(async () => (await scoreOf(node.sup, key.did)) === 80, 3000, 'score 80');
  await assertJournalUnchanged(node.sup, before, [e1, e2b]);
  assert.is(hostile.closeInfo, undefined, 'a chain error alone is not worth a ban');
  hostile.close();
  await assertServesHonest(node.sup);
});

test('entries that do not start at want.from, skip a seq, or were never asked for are protocol offences', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const hostile = await RawPeer.open(port);
  await hostile.session(key);
  const feed = freshFeed(6);
  const score = () => scoreOf(node.sup, key.did);

  // Never asked for.
  hostile.send({ t: 'entries', author: feed.did, from: 1, entries: feed.entries.slice(0, 2) });
  await until(async () => (await score()) === 90, 2000, 'score 90');

  hostile.send({ t: 'vv', heads: { [feed.did]: 6 }, more: false });
  let want = await hostile.take('want');
  assert.equal([want.from, want.to], [1, 6]);
  // An answer claiming to start later than asked.
  hostile.send({ t: 'entries', author: feed.did, from: 3, entries: feed.entries.slice(2, 6) });
  await until(async () => (await score()) === 80, 2000, 'score 80');
  // An answer at the right from whose entries start later (a gap at the front).
  hostile.send({ t: 'entries', author: feed.did, from: 1, entries: feed.entries.slice(1, 4) });
  await until(async () => (await score()) === 70, 2000, 'score 70');

  hostile.send({ t: 'have', heads: { [feed.did]: 6 } });
  want = await hostile.take('want');
  assert.is(want.from, 1);
  // A gap in the middle: 1, 2, 4.
  const gappy = [feed.at(1), feed.at(2), feed.at(4)];
  hostile.send({ t: 'entries', author: feed.did, from: 1, entries: gappy });
  await until(async () => (await score()) === 60, 2000, 'score 60');

  hostile.send({ t: 'have', heads: { [feed.did]: 6 } });
  want = await hostile.take('want');
  // More entries than asked for.
  hostile.send({
    t: 'entries',
    author: feed.did,
    from: 1,
    entries: [...feed.entries, feed.make('node', bodies.node(7))],
  });
  await until(async () => (await score()) === 50, 2000, 'score 50');

  await assertJournalUnchanged(node.sup, before, feed.entries);
  assert.is(hostile.closeInfo, undefined);
  hostile.close();
  await assertServesHonest(node.sup);
});

test('a flood of frames over rate_frames_per_s is dropped and ends in a ban (4004)', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const flooder = await RawPeer.open(port);
  await flooder.session(key);
  const feed = freshFeed(2);
  // Within the burst, frames are handled: the first asks for a feed...
  flooder.send({ t: 'have', heads: { [feed.did]: 2 } });
  const want = await flooder.take('want');
  assert.is(want.author, feed.did);
  // ...then far more than the bucket holds, in one go.
  const frame = JSON.stringify({ t: 'have', heads: {} });
  for (let i = 0; i < RATE * 10; i++) flooder.sendRaw(frame);
  // The answer arrives after the bucket is empty: dropped, never ingested.
  flooder.send({ t: 'entries', author: feed.did, from: 1, entries: feed.entries });
  assert.is(await flooder.closeCode(5000), CLOSE.banned);
  const ban = await banOf(node.sup, key.did);
  assert.ok(ban?.reason.startsWith('flood'), ban?.reason);

  await assertJournalUnchanged(node.sup, before, feed.entries);
  await assertServesHonest(node.sup);
});

test('the HTTP side refuses what is not a gossip upgrade over TLS 1.3', async () => {
  // HTTPS without the upgrade: 426.
  assert.is(await httpsStatus(port, RAW_TLS), 426);
  // Plain HTTP on the TLS port: a clear 400 that names TLS, not a reset.
  const plain = await fetch(`http://127.0.0.1:${port}${PATH}`);
  assert.is(plain.status, 400);
  assert.match(await plain.text(), /TLS 1\.3 only: use wss:\/\//);
  // A plain ws:// client the same.
  const ws = await RawPeer.open(port, PATH, false).then(
    () => 0,
    (err: unknown) => (err instanceof Refused ? err.status : -1),
  );
  assert.is(ws, 400);
  // A client that offers TLS 1.2 at most: the TLS handshake fails (protocol_version alert).
  const old = await httpsStatus(port, {
    ...RAW_TLS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
  }).then(String, (err: Error & { code?: string }) => err.code ?? err.message);
  assert.is(old, 'EPROTO', 'a TLS 1.2-only client is refused');
  const wrongPath = await RawPeer.open(port, '/other').then(
    () => 0,
    (err: unknown) => (err instanceof Refused ? err.status : -1),
  );
  assert.is(wrongPath, 404);
  await assertServesHonest(node.sup);
});

/** The status of a GET over HTTPS with `tls` options (rejects on a TLS failure). */
function httpsStatus(p: number, tls: ConnectionOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: p, path: PATH, ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------
// Thousands of connections

/** Append as a node that learns its own head from peers: retried until it has. */
async function appendOnceSynced(
  sup: Supervisor,
  requestId: string,
  kind: string,
  body: unknown,
): Promise<{ seq: number; author: string }> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await append(sup, requestId, kind, body);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_SELF_SYNC_PENDING' || Date.now() > end) {
        throw err;
      }
      await sleep(20);
    }
  }
}

/** A TCP connection to the gossip port that sends `first` (or nothing) and then nothing. */
async function silentSocket(
  p: number,
  first?: Buffer,
): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = netConnect(p, '127.0.0.1');
  socket.on('error', () => {});
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => resolve(Date.now() - t0)),
  );
  await new Promise<void>((resolve) => {
    socket.once('connect', () => {
      if (first) socket.write(first);
      resolve();
    });
    socket.once('close', () => resolve());
  });
  return { socket, closed };
}

test('connections that never ask for the upgrade are cut after handshake_timeout_ms; honest links stay up', async () => {
  const before = await journalSnapshot(node.sup);
  // An honest peer connected before the flood.
  const honest = await RawPeer.open(port);
  const honestKey = freshKey();
  await honest.session(honestKey);
  // Half a TLS record (the start of a ClientHello) is no better than nothing.
  const partial = await silentSocket(port, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
  const SILENT = 1000;
  const silent = await Promise.all(Array.from({ length: SILENT }, () => silentSocket(port)));
  try {
    // While they are held, the honest peer keeps syncing.
    const feed = freshFeed(3);
    await honest.serve(feed);
    await until(async () => (await heads(node.sup))[feed.did] === 3, 3000, 'the honest feed');
    before.heads[feed.did] = 3;

    const partialAt = await partial.closed;
    assert.ok(partialAt >= HANDSHAKE_TIMEOUT_MS - 50, `partial request cut after ${partialAt} ms`);
    assert.ok(partialAt < HANDSHAKE_TIMEOUT_MS + 1500, `partial request cut after ${partialAt} ms`);
    const cutAfter = await Promise.all(silent.map((c) => c.closed));
    const slowest = Math.max(...cutAfter);
    assert.ok(
      slowest < HANDSHAKE_TIMEOUT_MS + 1500,
      `every silent socket cut, the last after ${slowest} ms`,
    );
  } finally {
    for (const c of silent) c.socket.destroy();
    partial.socket.destroy();
  }
  assert.is(honest.closeInfo, undefined, 'the honest link stayed up');
  assert.is(await scoreOf(node.sup, honestKey.did), 100);
  honest.close();
  await assertJournalUnchanged(node.sup, before);
  await assertServesHonest(node.sup);
});

test('past max_pending_handshakes connections yet to upgrade, a new one is cut at once', async () => {
  const PENDING = 20;
  const a = await startNode(
    tempDir(),
    gossipConfig({ max_pending_handshakes: PENDING, handshake_timeout_ms: 10_000 }),
  );
  const held: Array<{ socket: Socket; closed: Promise<number> }> = [];
  try {
    const portA = (await gossipStatus(a.sup)).listening;
    for (let i = 0; i < PENDING; i++) held.push(await silentSocket(portA));
    await sleep(200); // the node has taken them all in
    const extra = await Promise.all(Array.from({ length: 10 }, () => silentSocket(portA)));
    const cutAfter = await Promise.all(extra.map((c) => c.closed));
    assert.ok(Math.max(...cutAfter) < 2000, `cut at once, not after 10 s: ${cutAfter}`);
    assert.ok(
      held.every((c) => !c.socket.destroyed && c.socket.readyState === 'open'),
      'the first ones are held until their timeout',
    );
    // A held slot freed is a slot for the next connection.
    held.pop()!.socket.destroy();
    await sleep(200);
    const next = await RawPeer.open(portA);
    await next.session(freshKey());
    next.close();
  } finally {
    for (const c of held) c.socket.destroy();
    await a.stop();
  }
});

interface Upgrade {
  status: number;
  socket: Socket;
}

/** A TLS socket that sends a WebSocket upgrade and then nothing: resolves with the HTTP status. */
function rawUpgrade(p: number): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port: p, host: '127.0.0.1', ...RAW_TLS });
    let head = '';
    let settled = false;
    socket.on('secureConnect', () =>
      socket.write(
        `GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
    socket.on('data', (d: Buffer) => {
      if (settled) return;
      head += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) {
        settled = true;
        resolve({ status: Number(m[1]), socket });
      }
    });
    socket.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    socket.on('close', () => {
      if (!settled) reject(new Error('closed before a status line'));
      settled = true;
    });
  });
}

test('thousands of held connections: past max_pending_handshakes 503, honest peers keep syncing', async () => {
  const FLOOD = 2000;
  const PENDING = 50;
  const a = await startNode(
    tempDir(),
    gossipConfig({ max_pending_handshakes: PENDING, handshake_timeout_ms: 10_000 }),
  );
  let b: RunningNode | undefined;
  const sockets: Socket[] = [];
  try {
    const portA = (await gossipStatus(a.sup)).listening;
    // An honest real node, connected before the flood.
    b = await startNode(tempDir(), {
      ...gossipConfig({ listen: '', peers: [`wss://127.0.0.1:${portA}${PATH}`] }),
    });
    const didB = (await gossipStatus(b.sup)).did;
    await until(
      async () => (await scoreOf(a.sup, didB)) !== undefined,
      5000,
      'node b connected to a',
    );
    const first = await appendOnceSynced(b.sup, 'b-1', 'node', bodies.node(2));
    await until(async () => (await heads(a.sup))[didB] === first.seq, 5000, 'b-1 on a');

    // The flood: every socket upgrades and then says nothing.
    const t0 = Date.now();
    // In waves of 250: all 2,000 at once overflowed the listen backlog on a busy host, and the
    // kernel reset every connection past it before the node could answer any (all "cut").
    const results: Array<PromiseSettledResult<Awaited<ReturnType<typeof rawUpgrade>>>> = [];
    for (let i = 0; i < FLOOD; i += 250) {
      results.push(
        ...(await Promise.allSettled(
          Array.from({ length: Math.min(250, FLOOD - i) }, () => rawUpgrade(portA)),
        )),
      );
    }
    const statuses = new Map<number | string, number>();
    for (const r of results) {
      const k = r.status === 'fulfilled' ? r.value.status : 'cut';
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
      if (r.status === 'fulfilled') sockets.push(r.value.socket);
    }
    const accepted = statuses.get(101) ?? 0;
    const refused = statuses.get(503) ?? 0;
    // Cut: closed before any answer, past max_pending_handshakes connections yet to upgrade.
    const cut = statuses.get('cut') ?? 0;
    const seen = [...statuses].map(([k, n]) => `${k}: ${n}`).join(', ');
    assert.ok(accepted <= PENDING, `at most ${PENDING} pending handshakes (${seen})`);
    assert.ok(accepted >= PENDING / 2, `the first ones got in (${seen})`);
    assert.ok(refused > 0, `past the limit the node answers 503 (${seen})`);
    assert.is(accepted + refused + cut, FLOOD, `nothing else (${seen})`);
    assert.ok(Date.now() - t0 < 10_000, 'all answered before the handshake timeout');
    const during = await gossipStatus(a.sup);
    assert.ok(during.peers.filter((p) => p.state === 'handshake').length <= PENDING);

    // While the flood is held: the honest link stays up and keeps syncing, both ways.
    const second = await append(b.sup, 'b-2', 'offer', bodies.offer(), 10_000);
    const onA = await append(a.sup, 'a-1', 'node', bodies.node(3), 10_000);
    await until(async () => (await heads(a.sup))[didB] === second.seq, 5000, 'b-2 on a');
    await until(async () => (await heads(b!.sup))[onA.author] === onA.seq, 5000, 'a-1 on b');
    // A new honest connection is refused while every handshake slot is taken.
    const refusedHonest = await RawPeer.open(portA).then(
      (p) => {
        p.close();
        return 101;
      },
      (err: unknown) => (err instanceof Refused ? err.status : -1),
    );
    assert.is(refusedHonest, 503);
    // The node does not cut the held sockets before their handshake timeout.
    assert.is(
      (await gossipStatus(a.sup)).peers.filter((p) => p.state === 'handshake').length,
      accepted,
    );

    // The flood ends.
    for (const s of sockets) s.destroy();
    await until(
      async () => (await gossipStatus(a.sup)).peers.every((p) => p.state === 'open'),
      5000,
      'the held connections gone',
    );
    await assertServesHonest(a.sup, portA);
    const third = await append(b.sup, 'b-3', 'node', bodies.node(4), 10_000);
    await until(async () => (await heads(a.sup))[didB] === third.seq, 5000, 'b-3 on a');
    const after = await gossipStatus(a.sup);
    assert.is(after.bans.length, 0, 'nobody was banned: a held socket has no DID to ban');
  } finally {
    for (const s of sockets) s.destroy();
    await b?.stop();
    await a.stop();
  }
}, 60_000);

test('a peer that advertises a feed and never answers the want does not stall it', async () => {
  const before = await journalSnapshot(node.sup);
  const key = freshKey();
  const silent = await RawPeer.open(port);
  await silent.session(key);
  const feed = freshFeed(3);
  silent.send({ t: 'vv', heads: { [feed.did]: 3 }, more: false });
  await silent.take('want'); // and never answered (the socket still answers pings)

  const honest = await RawPeer.open(port);
  await honest.session(freshKey());
  honest.send({ t: 'vv', heads: { [feed.did]: 3 }, more: false });
  await sleep(IDLE_TIMEOUT_MS / 2);
  assert.is(
    honest.frames.find((f) => f.t === 'want'),
    undefined,
    'one pull per feed at a time: the honest peer waits its turn',
  );
  const t0 = Date.now();
  const want = await honest.take('want', IDLE_TIMEOUT_MS + 3000);
  assert.equal([want.author, want.from, want.to], [feed.did, 1, 3]);
  assert.ok(Date.now() - t0 < IDLE_TIMEOUT_MS + 2000, 'within an idle timeout and a sweep');
  honest.send({ t: 'entries', author: feed.did, from: 1, entries: feed.entries });
  await until(
    async () => (await heads(node.sup))[feed.did] === 3,
    3000,
    'the feed from the honest peer',
  );
  assert.is(await scoreOf(node.sup, key.did), 95, 'the silent peer paid as for an empty answer');
  assert.is(silent.closeInfo, undefined, 'but is not cut off for one slow answer');

  // Its late answer is now an answer nobody asked for.
  silent.send({ t: 'entries', author: feed.did, from: 1, entries: feed.entries });
  await until(async () => (await scoreOf(node.sup, key.did)) === 85, 2000, 'score 85');
  silent.close();
  honest.close();
  assert.equal((await heads(node.sup))[feed.did], 3);
  assert.equal(Object.keys(await heads(node.sup)).length, Object.keys(before.heads).length + 1);
});

test.run();
