/**
 * Newline-delimited text from a stream, split into lines: the admin API
 * (NDJSON requests and answers, both ends) and the nft launcher's answers.
 * A bound on a line's size (in UTF-8 bytes) is checked on complete lines
 * and on the unfinished remainder alike, so a long line is refused the same
 * whichever chunks it arrives in; past it nothing more is read (where the
 * next line starts cannot be known).
 */
export class LineReader {
  private buffered = '';
  private over = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineBytes = Infinity,
  ) {}

  /** True once a line went over the bound: the rest of the stream is ignored. */
  get oversize(): boolean {
    return this.over;
  }

  /** Take a chunk; returns false once a line went over the bound. */
  push(chunk: string): boolean {
    if (this.over) return false;
    this.buffered += chunk;
    let start = 0;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n', start)) {
      const line = this.buffered.slice(start, nl);
      start = nl + 1;
      if (this.tooLong(line)) return this.refuse();
      this.onLine(line);
    }
    this.buffered = this.buffered.slice(start);
    return this.tooLong(this.buffered) ? this.refuse() : true;
  }

  private tooLong(text: string): boolean {
    // Cheap first: a string's UTF-8 size is at most 3 bytes per UTF-16 unit.
    return (
      this.maxLineBytes !== Infinity &&
      text.length * 3 > this.maxLineBytes &&
      Buffer.byteLength(text) > this.maxLineBytes
    );
  }

  private refuse(): false {
    this.over = true;
    this.buffered = '';
    return false;
  }
}
