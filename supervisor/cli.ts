#!/usr/bin/env node
/** The `meshnode` executable (package.json "bin"); the commands are in commands.ts. */
import { main } from './commands.js';

process.exitCode = await main(process.argv.slice(2));
