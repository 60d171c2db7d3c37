/**
 * Self-sync: a restored node learns its own feed's head from its peers
 * before it appends as itself, or it would fork its own feed (see check()).
 */
import type { Logger } from '../../runtime/log.js';
import type { Dialer } from './dialer.js';
import type { Peer } from './peer.js';

/**
 * The first peer to answer may be stale: the others configured get this
 * long after that first answer to answer too.
 */
const SELF_SYNC_GRACE_MS = 5000;
/** While our own feed is still being pulled, self-sync is looked at again this often. */
const SELF_SYNC_RECHECK_MS = 1000;

/** What self-sync reads of the mesh. */
export interface SelfSyncHost {
  readonly did: string;
  readonly local: ReadonlyMap<string, number>;
  readonly dialer: Pick<Dialer, 'targets'>;
  /** Open peers that sync (a joiner waiting for its redemption does not). */
  syncPeers(): Peer[];
}

export class SelfSync {
  synced = false;
  /** When the first complete version vector came (0: none yet). */
  private heardAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: SelfSyncHost,
    private readonly journal: { selfSynced(): Promise<void> },
    private readonly log: Logger,
  ) {}

  stop(): void {
    clearTimeout(this.timer);
  }

  /**
   * A restored node must not append as itself before it knows its own feed's
   * head, or it forks its feed. It waits for complete version vectors, pulls
   * whatever of its own feed any of those peers has, and confirms once every
   * configured peer has answered — or SELF_SYNC_GRACE_MS after the first
   * answer, for peers that are down. Trusting the first answer alone let a
   * stale peer (one that missed our latest entries) unlock appends at a seq
   * another peer already holds. A peer that claims more of our feed than it
   * serves stops counting once its want fails (empty or unanswered: `ahead`
   * is dropped), so it cannot hold appends back for good.
   */
  check(): void {
    if (this.synced) return;
    const heard = this.host.syncPeers().filter((p) => p.vvComplete);
    if (heard.length === 0) return;
    this.heardAt ||= Date.now();
    const ours = this.host.local.get(this.host.did) ?? 0;
    const pulling = heard.some(
      (p) => p.ahead.has(this.host.did) && (p.heads.get(this.host.did) ?? 0) > ours,
    );
    const waited = Date.now() - this.heardAt;
    if (pulling || (waited < SELF_SYNC_GRACE_MS && !this.everyConfiguredPeerHeard(heard))) {
      // Look again at the deadline, or soon while pulling (a failed pull calls nobody back).
      this.timer ??= setTimeout(
        () => {
          this.timer = undefined;
          this.check();
        },
        Math.max(SELF_SYNC_GRACE_MS - waited, SELF_SYNC_RECHECK_MS),
      );
      this.timer.unref();
      return;
    }
    void this.confirm();
  }

  /** Each configured dial target (other than ourselves) is an open peer with a complete vv. */
  private everyConfiguredPeerHeard(heard: Peer[]): boolean {
    for (const d of this.host.dialer.targets.values()) {
      if (d.source !== 'config' || d.did === this.host.did) continue;
      if (!heard.some((p) => p.url === d.url || (d.did !== undefined && p.did === d.did)))
        return false;
    }
    return true;
  }

  /** Tell the journal our own feed's head is known: appends as ourselves open. */
  async confirm(): Promise<void> {
    if (this.synced) return;
    this.synced = true;
    try {
      await this.journal.selfSynced();
      this.log.info({ head: this.host.local.get(this.host.did) ?? 0 }, 'own feed head confirmed');
    } catch (err) {
      this.synced = false;
      this.log.warn({ err }, 'could not confirm own feed head to the journal');
    }
  }
}
