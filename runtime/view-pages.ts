/**
 * Reading a whole journal view from another actor. The journal answers
 * `view {view, after?}` with at most VIEW_PAGE_ROWS rows whose keys follow
 * `after`, in key order; a page shorter than that is the last. Reading only
 * the first page was a bug: past 1,000 offers (say), the grants actor missed
 * services, and its reconcile with the executor was refused whole.
 */
import type { ViewName, ViewRowOf } from './domain/views.js';
import { VIEW_PAGE_ROWS } from './types.js';

/** Every row of `view`, page by page; `ask` sends `view` to the journal. */
export async function allViewRows<V extends ViewName>(
  ask: (data: { view: V; after?: string }) => Promise<unknown>,
  view: V,
): Promise<Array<[string, ViewRowOf[V]]>> {
  const out: Array<[string, ViewRowOf[V]]> = [];
  let after: string | undefined;
  for (;;) {
    // Without a key, the answer is a page (ViewAnswer, runtime/protocol/journal.ts).
    const page = (await ask(after === undefined ? { view } : { view, after })) as Array<
      [string, ViewRowOf[V]]
    >;
    out.push(...page);
    if (page.length < VIEW_PAGE_ROWS) return out;
    after = page.at(-1)![0];
  }
}
