#!/usr/bin/env node
// Writes the generated docs (docs/errors.md from runtime/errors.ts). Run after `tsc -b`.
import { writeFileSync } from 'node:fs';
import { renderErrorsDoc } from '../dist/runtime/errors-doc.js';

const target = new URL('../docs/errors.md', import.meta.url);
writeFileSync(target, renderErrorsDoc());
console.log(`wrote ${target.pathname}`);
