/**
 * The sync gossiper actor (DESIGN §5). This module is the process shell the
 * supervisor runs: it answers the operator's `status`. Its domain arrives
 * with issue 4 and lands in this folder.
 */
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { ADMIN } from '../../runtime/types.js';

export default class GossipActor extends Actor {
  private readonly startedAt = Date.now();

  constructor(ctx: ActorContext) {
    super(ctx);
    this.on('status', [ADMIN], () => this.adminOnStatus());
  }

  private adminOnStatus(): { actor: string; since: number; peers: number } {
    return { actor: this.name, since: this.startedAt, peers: 0 };
  }
}
