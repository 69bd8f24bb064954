// Loaded into the service by `--memory` (node --import): where the service's resident memory is,
// once a second, appended to $WMS_BENCH_MEMORY as one JSON line: the RSS, V8's heap (used and
// committed, with the code space and the young generation apart), memory outside the heap
// (external, of which array buffers), and the WebAssembly memories (PGlite), which no V8 figure
// counts: V8 reserves each one as a mapping of several GB, so they are the mappings of 4 GB and
// more in /proc/self/smaps, and what of them is resident is their Rss.
import { appendFileSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.WMS_BENCH_MEMORY;
const MIB = 1024 * 1024;
const WASM_RESERVATION_KB = 4 * 1024 * 1024;

function wasmResidentBytes(): number {
  let total = 0;
  let large = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (line.startsWith('Size:')) large = Number(line.slice(5).trim().split(' ')[0]) >= WASM_RESERVATION_KB;
    else if (large && line.startsWith('Rss:')) total += Number(line.slice(4).trim().split(' ')[0]) * 1024;
  }
  return total;
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
    wasm: wasmResidentBytes() / MIB,
  };
}

if (out) {
  setInterval(() => appendFileSync(out, `${JSON.stringify(sample())}\n`), 1000).unref();
}
