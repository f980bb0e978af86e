// The package as it would be published: `npm pack`, then require() and
// import of the tarball in a scratch directory (a registrar from each
// against the test server), and its .d.ts for both module kinds.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { uniqueName } from './helpers.js';

const root = join(__dirname, '..', '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'sc-pack-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const use = (cluster: string) => `
  const r = new ShardRegistrar({ cluster: '${cluster}', heartbeatInterval: 1, gracePeriod: 3, reshardInterval: 0 });
  const info = r.emitted('shardChanged', { timeout: 30000 });
  await r.start();
  const got = await info;
  await r.stop();
  if (got.shard !== 0 || got.numShards !== 1) throw new Error('unexpected ' + JSON.stringify(got));
  if (jumpHash('user-1', 10) !== 9) throw new Error('jumpHash');
`;

test('npm pack, then require and import of the tarball', { timeout: 120000 }, () => {
  const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  assert.ok(info);
  const files = info.files.map((f) => f.path);
  for (const f of files) assert.match(f, /^(dist\/(cjs|esm)\/|README\.md$|package\.json$)/, `unexpected file ${f}`);
  for (const f of ['dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/esm/index.js', 'dist/esm/index.d.ts']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }

  // node_modules/shard-coordinator from the tarball; pg and the types from
  // this package's own node_modules.
  const modules = join(scratch, 'node_modules');
  mkdirSync(modules);
  execFileSync('tar', ['-xzf', join(scratch, info.filename), '-C', scratch]);
  renameSync(join(scratch, 'package'), join(modules, 'shard-coordinator'));
  symlinkSync(join(root, 'node_modules', 'pg'), join(modules, 'pg'));
  symlinkSync(join(root, 'node_modules', '@types'), join(modules, '@types'));

  writeFileSync(
    join(scratch, 'check.cjs'),
    `const { ShardRegistrar, jumpHash } = require('shard-coordinator');
     (async () => { ${use(uniqueName('cjs'))} console.log('cjs ok'); })().catch((e) => { console.error(e); process.exit(1); });`,
  );
  writeFileSync(
    join(scratch, 'check.mjs'),
    `import { ShardRegistrar, jumpHash } from 'shard-coordinator';
     ${use(uniqueName('esm'))}
     console.log('esm ok');`,
  );
  assert.match(execFileSync(process.execPath, ['check.cjs'], { cwd: scratch, encoding: 'utf8' }), /cjs ok/);
  assert.match(execFileSync(process.execPath, ['check.mjs'], { cwd: scratch, encoding: 'utf8' }), /esm ok/);

  // The types, from a CommonJS and an ES module consumer (node16 resolution).
  const consumer = `import { ShardRegistrar, jumpHash, type Assignment, type ShardInfo } from 'shard-coordinator';
    import pg from 'pg';
    const r = new ShardRegistrar({ cluster: 'c', pool: new pg.Pool(), ipc: {}, heartbeatInterval: 60, gracePeriod: 30, reshardInterval: 60 });
    r.on('shardChanged', ({ shard, numShards }: ShardInfo) => void [shard + 1, numShards + 1]);
    r.on('assignment', (a: Assignment) => void a.epoch);
    const n: number = jumpHash('k', 3);
    export const x = [r, n];
  `;
  writeFileSync(join(scratch, 'consumer.cts'), consumer);
  writeFileSync(join(scratch, 'consumer.mts'), consumer);
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, types: ['node'], esModuleInterop: true },
      files: ['consumer.cts', 'consumer.mts'],
    }),
  );
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', scratch], {
    cwd: scratch,
    stdio: 'pipe',
  });
});
