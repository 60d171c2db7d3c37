/**
 * The AOS process contract as the sandbox host speaks it (the process
 * security specification, ../shared/reference/aos-process-security-spec.md):
 * messages in, `{Output, Messages, Spawns, Assignments, Error}` out. Every
 * value here is plain JSON: it crosses into QuickJS and back as text.
 */
import type { ErrorCode } from '../runtime/errors.js';

export interface Tag {
  name: string;
  value: string;
}

/** A message as a caller hands it to the host (before normalisation). */
export interface MessageInput {
  Id: string;
  From: string;
  /** The signer; defaults to `From`. */
  Owner?: string;
  /** Defaults to the process the message is evaluated by (anything else is an assignment). */
  Target?: string;
  /** The only clock a process has. */
  Timestamp: number;
  'Block-Height'?: string;
  Data?: string;
  Tags?: Tag[];
  Reference?: string;
  'X-Reference'?: string;
  'Reply-To'?: string;
  'X-Origin'?: string;
}

/**
 * A normalised message: `Tags` is the name → value map (the last of equal
 * names wins), `TagArray` the original array, and every tag whose name is
 * not reserved (NON_EXTRACTABLE_TAGS) is also a field of the message itself.
 */
export interface Message {
  Id: string;
  From: string;
  Owner: string;
  Target: string;
  Timestamp: number;
  'Block-Height': string;
  Data: string;
  Tags: Record<string, string>;
  TagArray: Tag[];
  [field: string]: unknown;
}

export interface Environment {
  Process: {
    Id: string;
    Owner: string;
    Tags: Record<string, string>;
    TagArray: Tag[];
  };
}

/** A message the process asks to send; the host stamps `From` with the process id. */
export interface OutMessage {
  Target: string;
  From: string;
  Data: string;
  Tags: Tag[];
}

export interface SpawnRequest {
  Module: string;
  Data: string;
  Tags: Tag[];
}

export interface Assignment {
  Processes: string[];
  Message: string;
}

export interface ProcessResult {
  Output: unknown;
  Messages: OutMessage[];
  Spawns: SpawnRequest[];
  Assignments: Assignment[];
  /** Set when the message was refused or the handler failed; the outbox is then empty. */
  Error?: string;
  /**
   * Not part of AOS: with `Error`, the host's stable code for what went wrong
   * (ERR_SANDBOX_*: untrusted, assignment, boot, handler, timeout, memory,
   * output, inbox full, message, crash) so callers match on a code, not a text.
   */
  Code?: SandboxCode;
}

/** The codes a process result can carry: runtime/errors.ts documents them (module and lookup codes are thrown, never results). */
export type SandboxCode = Exclude<
  Extract<ErrorCode, `ERR_SANDBOX_${string}`>,
  'ERR_SANDBOX_MODULE' | 'ERR_SANDBOX_NO_PROCESS'
>;

/** Limits of one process; each message gets a fresh runtime with these. */
export interface Limits {
  /** QuickJS runtime memory limit, bytes. */
  memoryBytes: number;
  /** Wall-clock budget of one message in the engine, ms (the interrupt handler enforces it). */
  deadlineMs: number;
  /** Largest result (JSON of Output, Messages, Spawns, Assignments), bytes. */
  maxOutputBytes: number;
  /** Largest state (JSON of `State`) kept between messages, bytes. */
  maxStateBytes: number;
  /** Messages waiting for this process at most; more are refused (ERR_SANDBOX_INBOX_FULL). */
  inbox: number;
}

export const DEFAULT_LIMITS: Limits = {
  memoryBytes: 32 * 1024 * 1024,
  deadlineMs: 100,
  maxOutputBytes: 64 * 1024,
  maxStateBytes: 1024 * 1024,
  inbox: 64,
};

/** An assignable pattern: every named field of the message must equal the given string. */
export type AssignablePattern = Record<string, string>;

export interface ProcessSpec {
  /** The process id (also `ao.id`): [a-z][a-z0-9_-]{0,31}. */
  name: string;
  /** Path of the ES module file that exports `handle(msg, env)`. */
  module: string;
  /** Messages from the owner are trusted, and only the owner may boot the process. */
  owner: string;
  /** Senders (From or Owner) trusted besides the owner. */
  authorities?: string[];
  /** Assignments are refused unless they match one of these (default deny). */
  assignables?: AssignablePattern[];
  /** The process's own tags (env.Process.Tags). */
  tags?: Tag[];
  limits?: Partial<Limits>;
}

/**
 * Tags that never become fields of an incoming message (a tag cannot pose as
 * its `From`, `Owner`, `Target`…) and that a process may not set on what it
 * sends: the host owns them.
 */
export const NON_EXTRACTABLE_TAGS: readonly string[] = [
  'Data-Protocol',
  'Variant',
  'From-Process',
  'From-Module',
  'Type',
  'From',
  'Owner',
  'Anchor',
  'Target',
  'Data',
  'Tags',
  'TagArray',
  'Read-Only',
];

/**
 * Fields of a message that a forward does not carry over: who sent and
 * signed it, when and where it was scheduled, its identity. The forwarder
 * is not the original sender and cannot vouch for them.
 */
export const NON_FORWARDABLE_TAGS: readonly string[] = [
  // Every reserved tag but Data (a forward carries the payload on) …
  ...NON_EXTRACTABLE_TAGS.filter((t) => t !== 'Data'),
  // … and the original's signature, schedule and identity.
  'Hash-Chain',
  'Timestamp',
  'Nonce',
  'Epoch',
  'Signature',
  'Forwarded-By',
  'Pushed-For',
  'Cron',
  'Block-Height',
  'Reference',
  'Id',
  'Reply-To',
];
