// Loaded into the service by `--memory` (node --import): where the service's resident memory is,
// once a second, appended to $WMS_BENCH_MEMORY as one JSON line: the RSS, V8's heap (used and
// committed, with the code space and the young generation apart), memory outside the heap
// (external, of which array buffers; V8 counts a WebAssembly memory, PGlite's, as external: 128 MiB
// from its start, the least PGlite's module declares), and the binary's own pages resident.
import { appendFileSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.WMS_BENCH_MEMORY;
const MIB = 1024 * 1024;

/** Resident pages mapped from files (the node binary, shared libraries): the same in every node process. */
function fileBackedBytes(): number {
  const match = /^Pss_File:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function sample() {
  const usage = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s]));
  const committed = (name: string) => (spaces[name]?.physical_space_size ?? 0) / MIB;
  return {
    at: Date.now(),
    rss: usage.rss / MIB,
    heapUsed: usage.heapUsed / MIB,
    heapTotal: usage.heapTotal / MIB,
    oldSpace: committed('old_space'),
    newSpace: committed('new_space'),
    codeSpace: committed('code_space'),
    largeObjects: committed('large_object_space') + committed('code_large_object_space'),
    external: usage.external / MIB,
    arrayBuffers: usage.arrayBuffers / MIB,
    files: fileBackedBytes() / MIB,
  };
}

if (out) {
  setInterval(() => appendFileSync(out, `${JSON.stringify(sample())}\n`), 1000).unref();
}
