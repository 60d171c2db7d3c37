// hypercore ships no types; the journal bench uses only this much of it.
declare module 'hypercore' {
  export default class Hypercore {
    constructor(storage: string);
    ready(): Promise<void>;
    append(block: Buffer): Promise<{ length: number }>;
    close(): Promise<void>;
  }
}
