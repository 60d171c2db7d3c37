/**
 * The one catalogue of meshnode's coded errors and of the WebSocket close
 * codes its gossip links end with. Every error raised on purpose carries a
 * stable `code` (`ERR_*`); callers, tests and the admin API match on the
 * code, never on the message text, so messages may be improved freely while
 * codes are a contract. docs/errors.md is generated from this file
 * (`npm run docs`), and a test keeps it, the raise sites and this catalogue
 * in step: a code raised that is not here does not compile, a code here that
 * nothing raises fails the test.
 *
 * Errors are made only through the factories below (`E.ERR_*`, or a named
 * one that adds context); `new MeshError` appears in this file only (lint).
 * They cross thread boundaries as plain `{ code, message }` (types.ts
 * ErrorPayload) and are rebuilt on the other side with `errorFromPayload`,
 * so a caller on any thread sees a MeshError.
 */

/** Every error code, with what it means to whoever receives it. */
export const ERROR_CODES = {
  ERR_TIMEOUT: 'An ask got no reply within its timeout.',
  ERR_ACTOR_EXITED:
    "The target's worker exited while the ask was in flight (or the target stopped for good before it could be sent).",
  ERR_UNTRUSTED: 'The sender is not an authority for that action; the handler never ran.',
  ERR_MAILBOX_FULL:
    "The target's mailbox is at its high-water mark; retry later (backpressure, nothing was queued).",
  ERR_NO_ROUTE: 'The sender holds no channel to that actor: the topology does not allow the pair.',
  ERR_UNKNOWN_ACTION: 'The target declares no handler for that action.',
  ERR_HANDLER:
    'The handler threw something that was not a MeshError; its message is passed on, its stack is not.',
  ERR_STOPPING: 'The actor (or the node) is shutting down and accepts no new work.',
  ERR_CANCELLED:
    'A long job (journal verify) was cancelled: by its follower (Ctrl-C), by the node stopping, or because nobody asked about it for 30 s. It changed nothing.',
  ERR_CONTROL:
    'A control-plane call (health, stats, stop, …) failed because the worker is gone or did not answer in time.',
  ERR_INVALID_OPTION:
    'An option or child spec field is invalid; the message names the field, e.g. `options.maxPeers must be a positive integer`.',
  ERR_INVALID_CONFIG: "The node's config file cannot be read or parsed.",
  ERR_INTENSITY:
    'Restart intensity exceeded: the supervisor stopped every child and gives up (the process exits non-zero).',
  ERR_ACTOR_INIT: "An actor's init failed or did not finish in time.",
  ERR_STATE_LOCKED: 'Another meshnode process holds the state directory.',
  // Crypto and identity (runtime/crypto/)
  ERR_SCHEMA:
    "A value is not a journal value (floats, undefined, non-plain objects…) or a body does not match its kind's schema; the message names the path.",
  ERR_BAD_DID: 'A malformed Ed25519 did:key.',
  ERR_KEY_FILE:
    'A key file cannot be read or written, is readable by group/others, is malformed, or would be overwritten.',
  ERR_BAD_KEY: 'A seed or public key of the wrong length or type.',
  ERR_BAD_ENCODING: 'Malformed hex or base64 input.',
  // Journal (actors/journal/)
  ERR_MALFORMED_ENTRY:
    'Not an entry: missing/extra fields, wrong types or v, prev/seq inconsistent, non-canonical sig spelling.',
  ERR_UNKNOWN_KIND: "The entry's kind is not one of ENTRY_KINDS.",
  ERR_TOO_LARGE: 'An entry, body or batch over its size limit.',
  ERR_BAD_SIGNATURE: 'The signature fails the pinned Ed25519 rule.',
  ERR_SEQ_GAP: "seq does not follow the author's head.",
  ERR_PREV_MISMATCH: "prev is not the id of the author's head entry.",
  ERR_EQUIVOCATION:
    'Two different entries for one (author, seq); the proof is kept and the feed stopped.',
  ERR_FEED_STOPPED:
    "The author's feed is stopped: the signature audit found a stored entry whose own signature is invalid (it was taken on the signature of a later entry chaining to it); the entry is kept as proof, the feed takes no more.",
  ERR_BAD_REQUEST:
    'A request (between actors, or from the admin API) lacks a field or has the wrong type; the message names the field path. The handler never ran.',
  ERR_REQUEST_REUSED: "An append's requestId was used for a different append.",
  ERR_STORAGE: 'The store failed (I/O, closed, key too long).',
  ERR_STORAGE_FULL: 'The disk is full; nothing of the batch was stored.',
  ERR_STORAGE_FORMAT: 'The store on disk has another format version.',
  ERR_READ_ONLY: 'A write through a read-only journal handle.',
  ERR_SELF_SYNC_PENDING:
    "The journal will not append as this node until it has learned its own feed's head from a peer (a restored node must not fork its feed); `journal forceSelfHead` overrides.",
  ERR_BAD_PROOF:
    'An equivocation proof that does not prove one: not two valid, different entries for one (author, seq).',
  ERR_AUDIT_BROKEN:
    "An audit log's hash chain does not hold (a line edited, removed or cut off); the writer refuses to append to it.",
  // Grants (the authorizer's refusals, in the order they are checked; see
  // actors/grants/checks.ts):
  ERR_GRANT_NONCE: "Nonce unknown, already used, expired, or another peer's.",
  ERR_GRANT_SIGNATURE: "The request's signature does not verify under its DID.",
  ERR_GRANT_DID: "The request's DID is not the peer authenticated on the link.",
  ERR_GRANT_SUBSCRIPTION: 'No such subscription by that peer to that service here.',
  ERR_GRANT_OFFER: 'The service is not offered (or the offer was withdrawn).',
  ERR_GRANT_NOT_APPROVED: 'Manual offer and no standing approval.',
  ERR_GRANT_REVOKED: 'The subscription (or its grant) was revoked.',
  ERR_GRANT_RATE: 'Per-subscriber or global request rate exceeded.',
  ERR_GRANT_POLICY: "The operator's policy denied, failed or timed out.",
  ERR_GRANT_SOURCE_IP: 'The observed source IP is outside the mesh CIDRs.',
  ERR_GRANT_NOT_MEMBER: 'Closed mesh: the subscriber (or the provider) is not a member.',
  ERR_GRANT_RECORD_IP:
    "The link's source IP is not a mesh IP of the subscriber's node record (the offer does not allow any source).",
  ERR_GRANT_APPLY: 'Allowed, but the firewall change failed: nothing granted.',
  ERR_GRANT_REFUSED: '(consumer side) the provider refused without a code.',
  ERR_UNAVAILABLE: 'The node does not serve that (no authorizer running).',
  // Admin API and CLI:
  ERR_NOT_RUNNING: 'No node is listening on the admin socket.',
  ERR_ADMIN: 'The admin connection failed otherwise, or an answer came without a code.',
  ERR_USAGE: 'The command line is wrong (the CLI exits 2).',
  // nft executor (actors/nft/; a refused request applied nothing):
  ERR_NFT_BAD_REQUEST:
    "The request's shape is wrong: not an object, an unknown or missing field, a wrong type, too many items, one grant twice, or contradictory items.",
  ERR_NFT_BAD_IP: 'Not a strict IPv4/IPv6 literal (no zone id, brackets, leading zeros, spaces).',
  ERR_NFT_NOT_MESH: 'The IP is outside the mesh CIDRs.',
  ERR_NFT_BAD_PORT: 'Not an integer port from 1 to 65535.',
  ERR_NFT_BAD_PROTO: 'Not "tcp" or "udp".',
  ERR_NFT_BAD_LEASE: 'A lease (seconds) or expiry (ms) that is not a positive integer in range.',
  ERR_NFT_BAD_NAME: 'A name bound for the batch fails ^[a-z][a-z0-9_]{0,31}$.',
  ERR_NFT_NOT_OFFERED: 'A reconcile grant names a service outside its services.',
  ERR_NFT_FAILED:
    "nft refused or failed the transaction (nothing of it was applied); the message carries nft's own words.",
  ERR_NFT_UNAVAILABLE:
    'Backend "nft" was asked for but nft cannot run here (not installed, or no CAP_NET_ADMIN).',
  ERR_NFT_FOREIGN_TABLE:
    'The table of our name exists and was not created by meshnode: refused unless adopt_table is set.',
  ERR_OFFER_DISRUPTS:
    'Offering this port would drop connections (port 22, or established ones) from every source not granted: needs --force.',
  // Gossip (a peer's frames; each also costs the peer score):
  ERR_BAD_FRAME:
    'Not a frame of the negotiated version: not JSON, binary, unknown type, wrong fields, over a count limit.',
  ERR_TOO_DEEP:
    'JSON nested deeper than its decoder allows (a gossip frame or an admin request line): refused before it is parsed, charged to the sender.',
  ERR_PROTOCOL:
    'A well-formed frame at the wrong time: before the handshake, unsolicited entries, too many open requests.',
  ERR_HANDSHAKE:
    "The peer's handshake failed: bad signature, malformed DID, no common protocol version, a second hello.",
  ERR_NOT_ALLOWED:
    'The mesh is closed and the peer is not a member, holds no valid invite and is not on the allowlist (or it was expelled).',
  ERR_OTHER_MESH:
    'The peer (or the token, or the config) names another mesh than this node belongs to.',
  ERR_BANNED: 'The peer is banned (score fell below the threshold).',
  ERR_PEER_DUPLICATE: 'A second link to a peer already linked; both ends keep the same one.',
  ERR_PEERS_FULL:
    'No peer slot left: max_peers, or max_peers_per_ip from its address (a configured peer may evict an untrusted one).',
  // Sandbox (sandbox/): thrown by the host API
  ERR_SANDBOX_MODULE:
    'A process module cannot be loaded: the file cannot be read, is too large, or the process spec is invalid.',
  ERR_SANDBOX_NO_PROCESS: 'No process of that name is loaded in the host.',
  // and carried in a process result's `Code` (with `Error`; the outbox is empty):
  ERR_SANDBOX_UNTRUSTED: 'The message is from neither the owner nor an authority.',
  ERR_SANDBOX_ASSIGNMENT: 'An assignment that matches no allowlisted pattern.',
  ERR_SANDBOX_BOOT: 'A boot message (Type = Process) not from the owner.',
  ERR_SANDBOX_MESSAGE: 'The message is malformed (a field missing, too large).',
  ERR_SANDBOX_HANDLER:
    "The module failed to evaluate or handle() threw; the text is the process's own error, never host details.",
  ERR_SANDBOX_TIMEOUT: "The message ran past the process's CPU deadline.",
  ERR_SANDBOX_MEMORY: 'The process hit its memory cap (or its stack limit).',
  ERR_SANDBOX_OUTPUT: 'The result or the state is over its size limit.',
  ERR_SANDBOX_INBOX_FULL: "The process's inbox is full; the message was not queued.",
  ERR_SANDBOX_CRASH: 'A pool thread failed; the pool replaced it.',
  // The mesh directory (docs/design.md §9)
  ERR_NO_MESH: 'This node belongs to no mesh yet: found one (mesh found) or join one.',
  ERR_MESH_EXISTS: 'This node already belongs to a mesh; it cannot found or join another.',
  ERR_NO_RIGHT: 'The member lacks the right the action needs (membership rights, can()).',
  ERR_NOT_MEMBER: 'The DID is not a member of the mesh.',
  ERR_EXPELLED: "The feed's author was expelled: nothing after its cut is written or taken.",
  ERR_INVITE_FORGED: 'Not an invite token, or its signature does not verify for its inviter.',
  ERR_INVITE_EXPIRED: 'The invite token expired.',
  ERR_INVITE_USED: 'The invite token was already redeemed.',
  ERR_INVITE_MESH: 'The invite token is for another mesh, or not one this node issued.',
  ERR_INVITE_RIGHTS: 'The invite offers rights its inviter does not hold.',
  ERR_INVITE_DID: 'The invite token is bound to another DID.',
  ERR_JOIN: 'The join failed: the inviter could not be reached or did not answer.',
  ERR_NOT_FOUND: 'No such node, service, offer or entry (by name, DID or id prefix).',
  ERR_AMBIGUOUS: 'A name or id prefix matches more than one: the message lists the candidates.',
  ERR_NO_SUCH_SERVICE: 'The provider offers no such service.',
  ERR_ALREADY_REVOKED: 'The target was revoked already: nothing is written.',
  // Runtime (the admin API's answer when a handler failed without a code)
  ERR_INTERNAL:
    'The node failed in a way it has no code for; the message says what failed. Report it: it is a bug.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The close codes of a gossip link (RFC 6455 4000–4999 are ours), each with
 * the error code it is logged and counted under, if any.
 */
export const CLOSE_CODES = {
  shutdown: { code: 1001, doc: 'The node is stopping, or could not sign the handshake.' },
  tooBig: {
    code: 1009,
    error: 'ERR_TOO_LARGE',
    doc: 'A message over max_frame_bytes (ws sends it; the sender is charged).',
  },
  badFrame: { code: 4000, error: 'ERR_BAD_FRAME', doc: 'A frame that does not decode.' },
  handshake: {
    code: 4001,
    error: 'ERR_HANDSHAKE',
    doc: 'The handshake failed: bad proof, wrong binding, a second hello.',
  },
  version: { code: 4002, error: 'ERR_HANDSHAKE', doc: 'No protocol version in common.' },
  notAllowed: {
    code: 4003,
    error: 'ERR_NOT_ALLOWED',
    doc: 'Closed mesh: the peer is not a member, holds no valid invite, is not on the allowlist (or was expelled).',
  },
  banned: { code: 4004, error: 'ERR_BANNED', doc: 'The peer is banned (its score fell too low).' },
  self: { code: 4005, doc: 'The node dialed itself.' },
  handshakeTimeout: {
    code: 4006,
    error: 'ERR_HANDSHAKE',
    doc: 'The handshake did not finish in time.',
  },
  idle: { code: 4007, doc: 'Nothing heard from the peer within the idle timeout.' },
  full: {
    code: 4008,
    error: 'ERR_PEERS_FULL',
    doc: 'No peer slot left (max_peers, or max_peers_per_ip from its address).',
  },
  duplicate: {
    code: 4009,
    error: 'ERR_PEER_DUPLICATE',
    doc: 'A second link to a peer already linked: the older one stays.',
  },
  slow: { code: 4011, doc: 'The peer does not read: its send budget was exceeded.' },
  otherMesh: {
    code: 4012,
    error: 'ERR_OTHER_MESH',
    doc: 'The peer belongs to another mesh.',
  },
  inviteRefused: {
    code: 4013,
    doc: 'The invite was refused: the `joinRes` frame before the close carries the ERR_INVITE_* code.',
  },
} as const satisfies Record<string, { code: number; error?: ErrorCode; doc: string }>;

export type CloseName = keyof typeof CLOSE_CODES;

/** Close codes by name: `CLOSE.banned` is 4004. */
export const CLOSE = Object.fromEntries(
  Object.entries(CLOSE_CODES).map(([name, c]) => [name, c.code]),
) as { readonly [N in CloseName]: (typeof CLOSE_CODES)[N]['code'] };

/** Close codes by the error code they stand for (the first entry of each). */
const CLOSE_BY_ERROR = new Map<string, number>();
for (const c of Object.values(CLOSE_CODES) as Array<{ code: number; error?: ErrorCode }>) {
  if (c.error && !CLOSE_BY_ERROR.has(c.error)) CLOSE_BY_ERROR.set(c.error, c.code);
}

/** The close code a link refused or ended with `err` closes with (4000 for a code without one). */
export function closeCodeOf(err: MeshError): number {
  return CLOSE_BY_ERROR.get(err.code) ?? CLOSE.badFrame;
}

/** The base of every coded error. `code` is the contract. */
export class MeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshError';
    this.code = code;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

type Factory = (message: string, options?: { cause?: unknown }) => MeshError;

/** One factory per code: `E.ERR_BAD_REQUEST('journal.append.requestId: …')`. */
export const E = Object.fromEntries(
  Object.keys(ERROR_CODES).map((code) => [
    code,
    (message: string, options?: { cause?: unknown }) =>
      new MeshError(code as ErrorCode, message, options),
  ]),
) as { readonly [C in ErrorCode]: Factory };

// --- factories that add context ------------------------------------------

export const badRequest = (why: string): MeshError => E.ERR_BAD_REQUEST(why);

export const banned = (until: number): MeshError =>
  E.ERR_BANNED(`banned until ${new Date(until).toISOString()}`);
export const notAllowed = (why: string): MeshError => E.ERR_NOT_ALLOWED(why);
export const peerDuplicate = (why: string): MeshError => E.ERR_PEER_DUPLICATE(why);
export const peersFull = (why: string): MeshError => E.ERR_PEERS_FULL(why);

export const timeout = (to: string, action: string, ms: number): MeshError =>
  E.ERR_TIMEOUT(`ask ${to}.${action} got no reply within ${ms} ms`);

export const actorExited = (to: string, action: string): MeshError =>
  E.ERR_ACTOR_EXITED(`actor ${to} exited before answering ${action}`);

export const untrusted = (from: string, to: string, action: string): MeshError =>
  E.ERR_UNTRUSTED(`${from} is not an authority for ${to}.${action}`);

export const mailboxFull = (to: string, highWater: number): MeshError =>
  E.ERR_MAILBOX_FULL(`mailbox of ${to} is full (high-water mark ${highWater})`);

export const noRoute = (from: string, to: string): MeshError =>
  E.ERR_NO_ROUTE(`${from} holds no channel to ${to}`);

export const unknownAction = (to: string, action: string): MeshError =>
  E.ERR_UNKNOWN_ACTION(`${to} has no handler for ${action}`);

export const handlerFailed = (to: string, action: string, message: string): MeshError =>
  E.ERR_HANDLER(`${to}.${action} failed: ${message}`);

export const stopping = (who: string): MeshError =>
  E.ERR_STOPPING(`${who} is stopping and accepts no new work`);

export const control = (who: string, call: string, why: string): MeshError =>
  E.ERR_CONTROL(`control call ${call} to ${who} failed: ${why}`);

export const invalidOption = (path: string, expectation: string): MeshError =>
  E.ERR_INVALID_OPTION(`${path} ${expectation}`);

export const invalidConfig = (message: string, cause?: unknown): MeshError =>
  E.ERR_INVALID_CONFIG(message, { cause });

export const intensity = (restarts: number, periodMs: number): MeshError =>
  E.ERR_INTENSITY(
    `restart intensity exceeded: more than ${restarts} restarts in ${periodMs / 1000} s`,
  );

export const actorInit = (name: string, why: string): MeshError =>
  E.ERR_ACTOR_INIT(`actor ${name} failed to start: ${why}`);

export const stateLocked = (dir: string, pid: number): MeshError =>
  E.ERR_STATE_LOCKED(`state directory ${dir} is in use by another meshnode process (pid ${pid})`);

export const badFrame = (why: string): MeshError => E.ERR_BAD_FRAME(why);
export const tooLarge = (why: string): MeshError => E.ERR_TOO_LARGE(why);
export const tooDeep = (what: string, limit: number): MeshError =>
  E.ERR_TOO_DEEP(`${what} nests deeper than ${limit} levels`);

export const protocolViolation = (why: string): MeshError => E.ERR_PROTOCOL(why);

export const handshakeFailed = (why: string): MeshError => E.ERR_HANDSHAKE(why);

/** A refused value as it may appear in a message: bounded, control and non-ASCII escaped. */
const shown = (v: unknown): string => {
  const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  const cut = text.length > 48 ? `${text.slice(0, 48)}…` : text;
  return JSON.stringify(cut).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
};

export const nftBadRequest = (why: string): MeshError => E.ERR_NFT_BAD_REQUEST(why);

export const nftBadIp = (path: string, v: unknown): MeshError =>
  E.ERR_NFT_BAD_IP(`${path} must be an IPv4 or IPv6 literal, got ${shown(v)}`);

export const nftNotMesh = (path: string, ip: string, cidrs: readonly string[]): MeshError =>
  E.ERR_NFT_NOT_MESH(`${path} ${ip} is outside the mesh CIDRs (${cidrs.join(', ')})`);

export const nftBadPort = (path: string, v: unknown): MeshError =>
  E.ERR_NFT_BAD_PORT(`${path} must be an integer from 1 to 65535, got ${shown(v)}`);

export const nftBadProto = (path: string, v: unknown): MeshError =>
  E.ERR_NFT_BAD_PROTO(`${path} must be "tcp" or "udp", got ${shown(v)}`);

export const nftBadLease = (path: string, v: unknown, range: string): MeshError =>
  E.ERR_NFT_BAD_LEASE(`${path} must be an integer ${range}, got ${shown(v)}`);

export const nftBadName = (what: string, v: unknown): MeshError =>
  E.ERR_NFT_BAD_NAME(`${what} must match ^[a-z][a-z0-9_]{0,31}$, got ${shown(v)}`);

export const nftNotOffered = (path: string, service: string): MeshError =>
  E.ERR_NFT_NOT_OFFERED(`${path} names ${service}, which is not in services`);

export const nftFailed = (what: string, detail: string): MeshError =>
  E.ERR_NFT_FAILED(`nft ${what} failed: ${detail}`);

export const nftUnavailable = (why: string): MeshError =>
  E.ERR_NFT_UNAVAILABLE(`nft cannot run here: ${why}`);

export const sandboxModule = (process: string, why: string): MeshError =>
  E.ERR_SANDBOX_MODULE(`sandbox process ${process}: ${why}`);

export const unknownProcess = (process: string): MeshError =>
  E.ERR_SANDBOX_NO_PROCESS(`no sandbox process named ${process}`);

/** Shape an error for a reply that crosses a thread boundary. */
export function toPayload(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof MeshError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ERR_HANDLER', message };
}

/**
 * Rebuild a MeshError from a reply payload. A code outside the catalogue
 * (only a peer's answer could carry one) becomes `fallback`, its text kept.
 */
export function errorFromPayload(
  p: { code: string; message: string },
  fallback: ErrorCode = 'ERR_HANDLER',
): MeshError {
  if (isErrorCode(p.code)) return new MeshError(p.code, p.message);
  return new MeshError(fallback, `${String(p.code).slice(0, 64)}: ${p.message}`);
}
