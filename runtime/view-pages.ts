/**
 * Reading a whole journal view from another actor. The journal answers
 * `view {view, after?}` with at most VIEW_PAGE_ROWS rows whose keys follow
 * `after`, in key order; a page shorter than that is the last. Reading only
 * the first page was a bug: past 1,000 offers (say), the grants actor missed
 * services, and its reconcile with the executor was refused whole.
 */
import { VIEW_PAGE_ROWS } from './types.js';

/** Every row of `view`, page by page; `ask` sends `view` to the journal. */
export async function allViewRows<T>(
  ask: (data: { view: string; after?: string }) => Promise<unknown>,
  view: string,
): Promise<Array<[string, T]>> {
  const out: Array<[string, T]> = [];
  let after: string | undefined;
  for (;;) {
    const page = (await ask(after === undefined ? { view } : { view, after })) as Array<
      [string, T]
    >;
    out.push(...page);
    if (page.length < VIEW_PAGE_ROWS) return out;
    after = page.at(-1)![0];
  }
}
