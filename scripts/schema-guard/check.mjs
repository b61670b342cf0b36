// Fails when schema.graphql changed in a way that breaks clients, at any step
// since this guard was added: each committed version is compared with the one
// before it (first-parent history of the checked-out branch), and the working
// tree with HEAD. A breaking change is a removed or retyped field, argument,
// input field or enum value, or a new required argument, that was not
// @deprecated in the version before (see breaking.mjs and README, "How the
// API evolves").
//
// Usage (from anywhere in the repository): node scripts/schema-guard/check.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { breakingChanges } from './breaking.mjs';

const FILE = 'schema.graphql';
const git = (...args) => execFileSync('git', args, { encoding: 'utf8', maxBuffer: 64 << 20 }).trim();

const root = git('rev-parse', '--show-toplevel');
process.chdir(root);

// The guard starts at the commit that added it: earlier history is accepted as is.
const since = git('log', '--diff-filter=A', '--format=%H', '--', 'scripts/schema-guard/check.mjs')
  .split('\n')
  .pop();
const versions = [];
if (since) {
  versions.push({ name: `${since.slice(0, 10)} (guard added)`, sdl: git('show', `${since}:${FILE}`) });
  const commits = git('rev-list', '--first-parent', '--reverse', `${since}..HEAD`, '--', FILE);
  for (const commit of commits.split('\n').filter(Boolean)) {
    versions.push({ name: commit.slice(0, 10), sdl: git('show', `${commit}:${FILE}`) });
  }
} else {
  // Not committed yet (or a shallow clone without that commit): HEAD is the base.
  if (git('rev-parse', '--is-shallow-repository') === 'true') {
    console.warn('schema-guard: shallow clone, only the working tree is compared with HEAD');
  }
  versions.push({ name: 'HEAD', sdl: git('show', `HEAD:${FILE}`) });
}
versions.push({ name: 'working tree', sdl: readFileSync(FILE, 'utf8') });

let failed = 0;
for (let i = 1; i < versions.length; i++) {
  const [before, after] = [versions[i - 1], versions[i]];
  if (before.sdl === after.sdl) continue;
  const broken = await breakingChanges(before.sdl, after.sdl);
  for (const change of broken) {
    console.error(`schema-guard: ${before.name} -> ${after.name}: ${change.message} (${change.path})`);
  }
  failed += broken.length;
}
if (failed > 0) {
  console.error(
    `schema-guard: ${failed} breaking change(s) to ${FILE}. Deprecate first (@deprecated(reason: ...)), ` +
      'remove in a later release: README, "How the API evolves".',
  );
  process.exit(1);
}
console.log(`schema-guard: ${FILE} has no breaking change across ${versions.length} version(s)`);
