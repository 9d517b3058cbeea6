/* global process, console */
// Prints one line per package from vitest's json-summary: lines, statements, branches, functions (%).
import { readFileSync } from 'node:fs';
const summary = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const per = new Map();
for (const [file, m] of Object.entries(summary)) {
  if (file === 'total') continue;
  const pkg = /packages\/([^/]+)\//.exec(file)?.[1];
  if (!pkg) continue;
  const acc = per.get(pkg) ?? { lines: [0, 0], statements: [0, 0], branches: [0, 0], functions: [0, 0] };
  for (const k of Object.keys(acc)) {
    acc[k][0] += m[k].covered;
    acc[k][1] += m[k].total;
  }
  per.set(pkg, acc);
}
const pct = ([c, t]) => (t ? ((100 * c) / t).toFixed(1) : '100.0');
for (const [pkg, a] of [...per].sort()) {
  console.log(`coverage ${pkg}: lines ${pct(a.lines)}%, statements ${pct(a.statements)}%, branches ${pct(a.branches)}%, functions ${pct(a.functions)}%`);
}
