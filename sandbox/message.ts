/**
 * The host's side of a message, before any process code runs: shape check,
 * tag normalisation, the trust and assignment rules, the boot rule and the
 * deterministic seed. Pure functions; the process cannot reach any of it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NON_EXTRACTABLE_TAGS } from './types.js';
import type { AssignablePattern, Message, MessageInput, ProcessSpec, Tag } from './types.js';

/** Bounds on what a caller may hand in: a message is data, not a way to fill the pool's memory. */
const MAX_FIELD = 4096;
const MAX_DATA = 256 * 1024;
const MAX_TAGS = 128;

const field = () => z.string().max(MAX_FIELD);
const tag = z.strictObject({ name: z.string().min(1).max(MAX_FIELD), value: field() });

const messageSchema = z.object({
  Id: field().min(1),
  From: field().min(1),
  Owner: field().min(1).optional(),
  Target: field().min(1).optional(),
  Timestamp: z.number().int().nonnegative(),
  'Block-Height': field().optional(),
  Data: z.string().max(MAX_DATA).optional(),
  Tags: z.array(tag).max(MAX_TAGS).optional(),
  Reference: field().optional(),
  'X-Reference': field().optional(),
  'Reply-To': field().optional(),
  'X-Origin': field().optional(),
});

/** Why a message is malformed, or null if it is fine. */
export function checkMessage(input: unknown): string | null {
  const r = messageSchema.safeParse(input);
  if (r.success) return null;
  const issue = r.error.issues[0]!;
  return `message.${issue.path.join('.') || '(root)'}: ${issue.message}`;
}

/** Tag array → map; the last of equal names wins, as in AOS. */
export function tagMap(tags: readonly Tag[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const t of tags) {
    // Defined, never assigned: a tag named __proto__ must stay data, not a prototype.
    Object.defineProperty(map, t.name, {
      value: t.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return map;
}

/**
 * Normalise a checked input for process `processId`: defaults filled in, tags
 * as a map, the original array kept, and each tag that is not reserved also
 * a field of the message — a reserved tag (`From`, `Owner`…) stays a tag and
 * never overrides the field the host vouches for.
 */
export function normalize(input: MessageInput, processId: string): Message {
  const tags = (input.Tags ?? []).map((t) => ({ name: t.name, value: t.value }));
  const msg: Message = {
    Id: input.Id,
    From: input.From,
    Owner: input.Owner ?? input.From,
    Target: input.Target ?? processId,
    Timestamp: input.Timestamp,
    'Block-Height': input['Block-Height'] ?? '0',
    Data: input.Data ?? '',
    Tags: tagMap(tags),
    TagArray: tags,
  };
  for (const k of ['Reference', 'X-Reference', 'Reply-To', 'X-Origin'] as const) {
    if (input[k] !== undefined) msg[k] = input[k];
  }
  // The fields set so far are the host's; tags fill in the rest, the last of equal names winning.
  const own = new Set(Object.keys(msg));
  for (const t of tags) {
    if (NON_EXTRACTABLE_TAGS.includes(t.name) || own.has(t.name)) continue;
    Object.defineProperty(msg, t.name, {
      value: t.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return msg;
}

/** Trust: the process's owner, or a declared authority as sender or signer. */
export function isTrusted(msg: Message, spec: ProcessSpec): boolean {
  if (msg.From === spec.owner) return true;
  const authorities = spec.authorities ?? [];
  return authorities.includes(msg.From) || authorities.includes(msg.Owner);
}

/** A message whose target is another process is an assignment to this one. */
export function isAssignment(msg: Message, processId: string): boolean {
  return msg.Target !== processId;
}

/** Default deny: no patterns, no assignments. */
export function isAssignable(msg: Message, patterns: readonly AssignablePattern[]): boolean {
  return patterns.some((p) => matchesSpec(msg, p));
}

/** Every field the pattern names equals the message's field (after normalisation) exactly. */
export function matchesSpec(msg: Message, pattern: AssignablePattern): boolean {
  const keys = Object.keys(pattern);
  return keys.length > 0 && keys.every((k) => Object.hasOwn(msg, k) && msg[k] === pattern[k]);
}

/** A boot message (AOS: `Type = Process`); only the owner's is honoured. */
export function isBoot(msg: Message): boolean {
  return msg.Tags.Type === 'Process';
}

/**
 * The PRNG seed of one message, as the specification's generateSeed:
 * block height, owner, module and message id. The same message to the same
 * module always draws the same numbers; a replay replays them.
 */
export function seedOf(msg: Message, moduleHash: string): number[] {
  const digest = createHash('sha256')
    .update(`${msg['Block-Height']}\n${msg.Owner}\n${moduleHash}\n${msg.Id}`)
    .digest();
  return [0, 4, 8, 12].map((i) => digest.readUInt32LE(i));
}
