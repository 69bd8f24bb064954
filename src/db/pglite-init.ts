// Creates an embedded database directory (initdb), run by openPglite in a process of its own:
// PGlite runs initdb in a second WebAssembly instance whose memory (a few hundred MB) the process
// keeps once it is done, and the service should not carry it for its whole life.
//
//   node pglite-init.ts <data dir>
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: pglite-init <data dir>\n');
  process.exit(2);
}
const db = await PGlite.create({ dataDir: dir });
await db.close();
