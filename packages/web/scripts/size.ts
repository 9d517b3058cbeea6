// Gzipped size of the JavaScript the first page (log in) loads: the entry chunk plus its
// static imports, transitively, read from dist/.vite/manifest.json. Lazy chunks are listed apart.
// Usage: node --import tsx packages/web/scripts/size.ts [--max-kb 250]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

interface Chunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
}

export interface SizeReport {
  entryFiles: string[];
  entryGzipBytes: number;
  cssGzipBytes: number;
  lazy: { file: string; gzipBytes: number }[];
}

export function measure(dist = path.resolve(import.meta.dirname, '../dist')): SizeReport {
  const manifest = JSON.parse(readFileSync(path.join(dist, '.vite/manifest.json'), 'utf8')) as Record<
    string,
    Chunk
  >;
  const gz = (file: string): number => gzipSync(readFileSync(path.join(dist, file)), { level: 9 }).length;
  const seen = new Set<string>();
  const css = new Set<string>();
  const visit = (key: string): void => {
    const c = manifest[key];
    if (!c || seen.has(c.file)) return;
    seen.add(c.file);
    c.css?.forEach((f) => css.add(f));
    c.imports?.forEach(visit);
  };
  for (const [key, c] of Object.entries(manifest)) if (c.isEntry) visit(key);
  const lazy = Object.values(manifest)
    .filter((c) => !seen.has(c.file) && c.file.endsWith('.js'))
    .map((c) => ({ file: c.file, gzipBytes: gz(c.file) }));
  return {
    entryFiles: [...seen],
    entryGzipBytes: [...seen].reduce((s, f) => s + gz(f), 0),
    cssGzipBytes: [...css].reduce((s, f) => s + gz(f), 0),
    lazy,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const i = process.argv.indexOf('--max-kb');
  const maxKb = i > 0 ? Number(process.argv[i + 1]) : 250;
  const r = measure();
  const kb = (b: number): string => (b / 1024).toFixed(1);
  console.log(`First page JavaScript (gzip): ${kb(r.entryGzipBytes)} KB  [${r.entryFiles.join(', ')}]`);
  console.log(`First page CSS (gzip): ${kb(r.cssGzipBytes)} KB`);
  for (const l of r.lazy) console.log(`Lazy chunk ${l.file}: ${kb(l.gzipBytes)} KB gzip`);
  if (r.entryGzipBytes > maxKb * 1024) {
    console.error(`FAIL: first page JavaScript exceeds ${maxKb} KB gzip`);
    process.exitCode = 1;
  }
}
