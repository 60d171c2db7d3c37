import * as assert from 'uvu/assert';
import { Actor } from '../../../runtime/actor.js';
import type { AppendResult } from '../../../runtime/protocol/journal.js';
import { journalProtocol } from '../../../runtime/protocol/journal.js';
import { describe } from '../../helpers/test.js';

/**
 * What the protocol types hold at compile time. `npm test` compiles this
 * file first: if a misspelt action or a wrong payload ever compiled again,
 * the `@ts-expect-error` above it would be unused and the build would fail.
 */
const test = describe('runtime/protocol-types', 2000);

class Typed extends Actor {
  async asks(): Promise<void> {
    const me: { did: string } = await this.ask('journal', 'identity');
    const appended: AppendResult = await this.ask('journal', 'append', {
      kind: 'node',
      body: {},
      requestId: 'r1',
    });
    void me;
    void appended;
    // @ts-expect-error a misspelt action does not compile
    await this.ask('journal', 'identiy');
    // @ts-expect-error a wrong payload does not compile
    await this.ask('journal', 'get', { id: 7 });
    // @ts-expect-error an actor that is not declared
    await this.ask('jornal', 'identity');
    // @ts-expect-error a required payload cannot be left out
    await this.ask('journal', 'append');
    // @ts-expect-error the reply type is inferred: an append answers an AppendResult
    const wrong: string = await this.ask('journal', 'append', {
      kind: 'node',
      body: {},
      requestId: 'r2',
    });
    void wrong;
    // @ts-expect-error tells are typed too
    this.tell('grants', 'appended', { entries: 'all' });
  }

  serveIncomplete(): void {
    // @ts-expect-error every declared action needs its handler
    this.serve(journalProtocol, { identity: () => ({ did: 'x' }) });
  }
}

test('the typed ask compiles only against the declarations (checked by the build)', () => {
  assert.type(Typed.prototype.asks, 'function');
  assert.ok(Object.keys(journalProtocol).includes('identity'));
});

test.run();
