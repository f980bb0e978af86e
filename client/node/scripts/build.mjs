#!/usr/bin/env node
// Builds the package: dist/cjs (CommonJS) and dist/esm (ES modules), each
// with its .d.ts files and a package.json that tells Node which kind it is.
// With --tests, also compiles src and test together into build/ for
// `node --test`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function compile(project) {
  execFileSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' });
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
compile('tsconfig.cjs.json');
compile('tsconfig.esm.json');
for (const [dir, type] of [['cjs', 'commonjs'], ['esm', 'module']]) {
  mkdirSync(join(root, 'dist', dir), { recursive: true });
  writeFileSync(join(root, 'dist', dir, 'package.json'), JSON.stringify({ type }) + '\n');
}

if (process.argv.includes('--tests')) {
  rmSync(join(root, 'build'), { recursive: true, force: true });
  compile('tsconfig.json');
}
