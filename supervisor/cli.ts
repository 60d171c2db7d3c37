#!/usr/bin/env node
/** The `meshnode` executable (package.json "bin"); the commands are in commands.ts. */
import { main } from './commands.js';

// `meshnode journal tail -f | head -3`: the reader is gone, so is our reason to run.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const argv = process.argv.slice(2);
process.exitCode = await main(argv);
// A node that failed to start has stopped everything it started; exit now,
// so no handle left behind keeps a dead node's process up (seen with a bad
// admin.group: the process stayed, answering `status`).
if (argv[0] === 'start' && process.exitCode !== 0) process.exit(process.exitCode);
