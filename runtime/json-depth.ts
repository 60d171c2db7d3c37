/**
 * How deep a JSON text nests, counted without parsing it. Every decoder of
 * outside input (gossip frames, the entries inside them, admin lines) asks
 * this first: JSON.parse itself copes with deep nesting, but what runs on
 * the parsed value (zod, canonicalization, our own walks) recurses, and a
 * 100k-deep body overflowed the stack ("Maximum call stack size exceeded"),
 * was taken for a failure on our side and charged to nobody.
 *
 * A linear scan of the text: brackets outside strings open and close a
 * level; inside a string only the escape matters. It stops as soon as the
 * limit is passed, so a hostile text costs no more than `limit` levels.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** The deepest nesting in `text`, or `limit + 1` as soon as it is passed (limit given). */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return deepest;
}
