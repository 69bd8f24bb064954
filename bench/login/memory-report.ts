// `--memory`: the service's memory (bench/login/memory.ts samples it) idle after its start and at
// its peak under load, split by where it is. What the split does not name (the rest of the RSS) is
// native memory: Node's and V8's own, OpenSSL's, the allocator's free lists, thread stacks. The
// external figure is allocated, not resident: of PGlite's WebAssembly memory only touched pages are.
import type { MemorySample } from './stack.ts';

export function describeMemory(samples: MemorySample[], loadStartedAt: number): string {
  const idle = samples.filter((s) => s.at <= loadStartedAt).at(-1);
  const loaded = samples.filter((s) => s.at > loadStartedAt);
  const peak = loaded.reduce<MemorySample | undefined>((max, s) => (!max || s.rss > max.rss ? s : max), undefined);
  if (!idle && !peak) return 'Memory: no samples (the service did not load bench/login/memory.ts)';
  const row = (label: string, value: (s: MemorySample) => number) =>
    `| ${label} | ${[idle, peak].map((s) => (s ? value(s).toFixed(1) : '-')).join(' | ')} |`;
  return [
    'Memory of the service (MiB), idle after start and at the peak RSS under load:',
    '',
    '| | idle | peak |',
    '|---|---|---|',
    row('RSS', (s) => s.rss),
    row('V8 heap used', (s) => s.heapUsed),
    row('V8 heap committed', (s) => s.heapTotal),
    row('  of it old space', (s) => s.oldSpace),
    row('  young generation', (s) => s.newSpace),
    row('  code space', (s) => s.codeSpace),
    row('  large objects', (s) => s.largeObjects),
    row('external (PGlite: its WebAssembly memory, 128 MiB)', (s) => s.external),
    row('  of it array buffers', (s) => s.arrayBuffers),
    row('files mapped (the node binary)', (s) => s.files ?? 0),
    row('rest (native anonymous: node, V8, OpenSSL, allocator)', (s) => s.rss - s.heapTotal - s.external - (s.files ?? 0)),
  ].join('\n');
}
