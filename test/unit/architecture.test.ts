// The shape of the code, checked: imports run downhill (no file imports itself round a circle, and
// the folders form layers), the rooms at the top (admin pages and API, metrics) are imported only by
// the commands that start them, and the sample Grafana dashboard asks only for metrics that exist.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from '@jest/globals';
import { createRegistry } from '../../src/metrics/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

/** Every module under src/ and the modules it imports (relative specifiers, static and dynamic). */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const source = readFileSync(join(SRC, file), 'utf8');
    const targets = new Set<string>();
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?\sfrom\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|(?:^|\n)import\s+'(\.[^']+)'/g)) {
      const specifier = match[1] ?? match[2] ?? match[3]!;
      targets.add(relative(SRC, normalize(join(SRC, dirname(file), specifier))));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The folder (or top-level module) a file belongs to: `moderation`, `cli`… */
const room = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file.replace(/\.ts$/, ''));

/** A cycle in `graph`, as the path round it, or undefined. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const graph = importGraph();

test('every relative import names a module that exists', () => {
  for (const [file, targets] of graph) for (const target of targets) assert.ok(graph.has(target), `${file} imports ${target}, which is not a module under src/`);
});

test('no module imports itself round a circle', () => {
  assert.equal(findCycle(graph)?.join(' → '), undefined);
});

test('the folders form layers: no folder imports one that imports it back', () => {
  const rooms = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = rooms.get(room(file)) ?? new Set<string>();
    for (const target of targets) if (room(target) !== room(file)) from.add(room(target));
    rooms.set(room(file), from);
  }
  assert.equal(findCycle(rooms)?.join(' → '), undefined);
});

test('admin/ and metrics/ sit at the top: only the commands that start them import them', () => {
  const above = new Set(['admin', 'metrics', 'commands', 'cli']);
  for (const [file, targets] of graph) {
    if (above.has(room(file))) continue;
    for (const target of targets) assert.ok(!['admin', 'metrics'].includes(room(target)), `${file} imports ${target}`);
  }
});

test('the sample Grafana dashboard asks only for metrics the service exports', async () => {
  const dashboard = readFileSync(join(ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8');
  const exprs = (JSON.parse(dashboard) as { panels: Array<{ targets: Array<{ expr: string }> }> }).panels.flatMap((p) => p.targets.map((t) => t.expr));
  const exported = new Set<string>();
  for (const metric of await createRegistry().getMetricsAsJSON()) {
    exported.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
  }
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:wms|process|nodejs)_\w+)/g)].map((m) => m[1]!)));
  assert.ok(used.size >= 10);
  for (const name of used) assert.ok(exported.has(name), `the dashboard uses ${name}, which is not exported`);
});
