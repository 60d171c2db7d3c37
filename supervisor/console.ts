/**
 * `meshnode console`: the full-screen live view. Being written (issue 7);
 * until then the command says so and exits with the usage code.
 */
import { MeshError } from '../runtime/errors.js';

export async function runConsole(_socketPath: string): Promise<number> {
  throw new MeshError('ERR_USAGE', 'the console is not built yet');
}
