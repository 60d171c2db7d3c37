// hypercore ships no types; the benches use only this much of it.
declare module 'hypercore' {
  import type { Duplex } from 'node:stream';
  export default class Hypercore {
    constructor(storage: string, key?: Buffer);
    readonly key: Buffer;
    ready(): Promise<void>;
    append(block: Buffer | Buffer[]): Promise<{ length: number }>;
    replicate(isInitiator: boolean): Duplex;
    download(range: { start: number; end: number }): { done(): Promise<void> };
    close(): Promise<void>;
  }
}
