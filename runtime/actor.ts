/**
 * The base class of every actor. An actor module's default export extends
 * it; the worker bootstrap (worker-main.ts) constructs it with a context and
 * drives its lifecycle: constructor (declare handlers) → init() → serve →
 * stop().
 *
 * An actor serves its protocol (runtime/protocol/<actor>.ts), one handler
 * per declared action, none missing:
 *
 *   this.serve(journalProtocol, { append: (req) => this.grantsOnAppend(req), … });
 *
 * The declaration says who may send each action (anyone else gets
 * ERR_UNTRUSTED, default deny) and how its request is checked on arrival
 * (a bad one gets ERR_BAD_REQUEST); the handler receives the parsed request.
 * `ask` and `tell` are typed by the target's declaration: a misspelt action
 * or a wrong payload does not compile, and the reply type is inferred.
 * `on`, `askAny` and `tellAny` are the untyped forms, for test actors.
 */
import type { Dispatcher, Handler } from './dispatcher.js';
import type { RequestCheck } from './protocol/define.js';
import type {
  ActionName,
  ActorName,
  DataArgs,
  Handlers,
  ProtocolSpec,
  Reply,
  Request,
  Sender,
} from './protocol/index.js';
import type { AskOptions, Endpoint } from './endpoint.js';
import type { Logger } from './log.js';
import type { MetricsRegistry } from './metrics.js';

export interface ActorContext {
  name: string;
  options: Record<string, unknown>;
  endpoint: Endpoint;
  dispatcher: Dispatcher;
  log: Logger;
  metrics: MetricsRegistry;
  /** End this actor normally (exit code 0): a transient child is not restarted. */
  exit: () => void;
}

export abstract class Actor {
  readonly name: string;
  readonly options: Record<string, unknown>;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  private readonly endpoint: Endpoint;
  private readonly dispatcher: Dispatcher;
  private readonly exitNormally: () => void;

  constructor(ctx: ActorContext) {
    this.name = ctx.name;
    this.options = ctx.options;
    this.log = ctx.log;
    this.metrics = ctx.metrics;
    this.endpoint = ctx.endpoint;
    this.dispatcher = ctx.dispatcher;
    this.exitNormally = ctx.exit;
  }

  /** Set up resources. The supervisor starts the next child only once this resolves. */
  async init(): Promise<void> {}

  /** Release resources. Runs after the mailbox drained (or the stop deadline passed). */
  async stop(): Promise<void> {}

  /** The actor's own state, for the inspector. Plain data. */
  inspectState(): unknown {
    return undefined;
  }

  /** Serve a declared protocol: one handler per action. */
  protected serve<P extends ProtocolSpec>(protocol: P, handlers: Handlers<P>): void {
    for (const action of Object.keys(protocol)) {
      const spec = protocol[action]!;
      const handler = handlers[action] as (req: unknown, from: Sender) => unknown;
      this.dispatcher.on(
        action,
        spec.from,
        (data, env) => handler(data, env.from as Sender),
        spec.request,
      );
    }
  }

  /** Ask an actor, typed by its declared protocol. */
  protected ask<T extends ActorName, A extends ActionName<T>>(
    to: T,
    action: A,
    ...args: DataArgs<Request<T, A>, [options?: AskOptions]>
  ): Promise<Reply<T, A>> {
    const [data, options] = args as [unknown, AskOptions | undefined];
    return this.endpoint.ask(to, action, data, options) as Promise<Reply<T, A>>;
  }

  /** Tell an actor, typed by its declared protocol; false if it could not be sent. */
  protected tell<T extends ActorName, A extends ActionName<T>>(
    to: T,
    action: A,
    ...args: DataArgs<Request<T, A>>
  ): boolean {
    return this.endpoint.tell(to, action, args[0]);
  }

  /** Untyped handler (test actors): `check` is how its request is checked on arrival. */
  protected on(
    action: string,
    authorities: readonly string[],
    handler: Handler,
    check?: RequestCheck<unknown>,
  ): void {
    this.dispatcher.on(action, authorities, handler, check);
  }

  /** Untyped ask (test actors, and forwarding to an actor named at run time). */
  protected askAny(
    to: string,
    action: string,
    data?: unknown,
    options?: AskOptions,
  ): Promise<unknown> {
    return this.endpoint.ask(to, action, data, options);
  }

  /** Untyped tell (test actors). */
  protected tellAny(
    to: string,
    action: string,
    data?: unknown,
    tags?: Record<string, string>,
  ): boolean {
    return this.endpoint.tell(to, action, data, tags);
  }

  /** Finish normally: the worker exits with code 0. */
  protected exit(): void {
    this.exitNormally();
  }
}

/** What an actor module must default-export. */
export type ActorClass = new (ctx: ActorContext) => Actor;
