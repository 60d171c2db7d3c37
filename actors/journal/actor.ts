/**
 * The journal writer actor (DESIGN §4). This module is the process shell the
 * supervisor runs: it answers the operator's `status`. The signed feeds,
 * LMDB store and ingest path are issue 3's and land in this folder.
 */
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { ADMIN } from '../../runtime/types.js';

export default class JournalActor extends Actor {
  private readonly startedAt = Date.now();

  constructor(ctx: ActorContext) {
    super(ctx);
    this.on('status', [ADMIN], () => this.adminOnStatus());
  }

  private adminOnStatus(): { actor: string; since: number; feeds: number } {
    return { actor: this.name, since: this.startedAt, feeds: 0 };
  }
}
