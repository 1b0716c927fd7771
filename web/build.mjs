// Bundles the console into OUTDIR (argv[2]): index.html, app.js, app.css and the chunks
// app.js loads later (chunk-HASH.js: xterm.js, when a console opens), the files tesserad
// serves at / and /ui/ (src/daemon/webui.h).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUTDIR');
  process.exit(2);
}
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'app.js')],
  bundle: true,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  target: 'es2020',
  minify: true,
  legalComments: 'linked',
  outdir: out,
  logLevel: 'warning',
});
await copyFile(join(here, 'src', 'index.html'), join(out, 'index.html'));
