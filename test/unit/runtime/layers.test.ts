import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from '../../helpers/test.js';

/**
 * The import graph of the source stays a graph without circles (type-only
 * imports included): a circle means two modules that cannot be read, tested
 * or split apart one at a time. The layer rules themselves (runtime imports
 * nothing above it, no actor imports another's code) are ESLint's
 * (eslint.config.js, no-restricted-imports).
 */
const test = describe('layers', 10_000);

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const SOURCE_DIRS = ['runtime', 'actors', 'supervisor', 'sandbox'];
const IMPORT = /(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g;

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const rel = join(dir, name);
      if (statSync(join(ROOT, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) g.set(rel, importsOf(rel));
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return g;
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2])!;
    const target = normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts');
    if (existsSync(join(ROOT, target))) out.push(relative('.', target));
  }
  return out;
}

/** Strongly connected components of more than one module (Tarjan). */
function circles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('the source has no import circles', () => {
  const g = graph();
  assert.ok(g.size > 100, `read the source (${g.size} modules)`);
  assert.equal(circles(g), []);
});

test('the circle finder finds a circle', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.equal(circles(g), [['a.ts', 'b.ts', 'c.ts']]);
});

test.run();
