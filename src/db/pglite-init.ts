// Creates an embedded database directory (initdb), run by openPglite in a process of its own:
// PGlite runs initdb in a second WebAssembly instance whose memory (a few hundred MB) the process
// keeps once it is done, and the service should not carry it for its whole life. With a template
// (pglite-template.ts) it unpacks that instead of running initdb, here too: the archive and its
// unpacking would otherwise stay in the service's memory (about 100 MB more RSS, measured).
//
//   node pglite-init.ts <data dir> [template archive]
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';

const [dir, template] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: pglite-init <data dir> [template archive]\n');
  process.exit(2);
}
const db = await PGlite.create({ dataDir: dir, ...(template && { loadDataDir: new Blob([readFileSync(template)]) }) });
await db.close();
