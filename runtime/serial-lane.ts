/**
 * One job at a time, in the order they were put on: the journal's writes
 * (a batch must never chain onto a commit that may still fail), the nft
 * executor's transactions, the supervisor's restarts and a gossip peer's
 * ingests. A job's failure is its caller's; the lane goes on with the next.
 */
export class SerialLane {
  private tail: Promise<unknown> = Promise.resolve();
  /** Jobs ever put on the lane: consecutive tickets have no other job between them. */
  tickets = 0;

  /** Run `job` after every job before it; resolves or rejects with it. */
  run<T>(job: () => T | Promise<T>): Promise<T> {
    this.tickets++;
    const run = this.tail.then(job);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Resolves once every job put on so far has settled (never rejects). */
  idle(): Promise<void> {
    return this.tail.then(() => {});
  }
}
