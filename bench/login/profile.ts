// Where the service's CPU time goes, from a V8 CPU profile (`node --cpu-prof`, which `--cpu-prof DIR`
// of the login benchmarks turns on): every sample is put in the category of the frame nearest the
// top of its stack that belongs to one (a socket write under the PostgreSQL client is database
// time, an RSA signature under oidc-provider is crypto), so the categories add up to the busy time.
//
//   node bench/login/profile.ts PROFILE.cpuprofile [--per N] [--from µs --to µs]
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** First match wins, tried on each frame from the top of the stack down. */
const CATEGORIES: Array<[string, RegExp]> = [
  ['crypto (signing, hashing, random)', /node:internal\/crypto|\/jose\/|\/oidc-provider\/lib\/helpers\/jwt|\bkeys?\.ts$|node:crypto/],
  ['database (pg client, sockets, PGlite)', /\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+|pgpass)\/|@electric-sql\/pglite|\/src\/db\/|\/src\/oidc\/adapter\.ts|\/src\/login\/store\.ts|\/src\/identity\/accounts\.ts/],
  ['templates and pages (views, i18n)', /\/src\/views\/|banana-i18n|\/src\/oidc\/pages\.ts/],
  ['upstream (wiki OAuth client, fetch)', /\/src\/wiki\/|openid-client|oauth4webapi|node:internal\/deps\/undici|undici/],
  ['logging (pino)', /\/node_modules\/(pino|sonic-boom|pino-std-serializers|fast-redact|quick-format-unescaped|thread-stream)\//],
  ['oidc-provider (protocol logic)', /\/oidc-provider\//],
  // Sockets, streams and buffers are not here: they belong to whoever called them (a write under
  // the pg client is database time), so a frame of theirs takes the category of its caller.
  ['HTTP (node:http, koa, router, cookies)', /node:_http|node:http\b|node:internal\/http|\/(koa|@koa|koa-compose|cookies|keygrip|raw-body|content-type|statuses|http-errors|accepts|negotiator|type-is|mime-types|on-finished|destroy|co-body)\/|\/src\/http\//],
  ['service code (interactions, config, identity)', /\/src\//],
  ['module loading and start-up', /node:internal\/modules|node:internal\/main|node:internal\/process\/esm_loader/],
];

const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'garbage collection',
  '(idle)': 'idle',
  '(program)': 'V8 and native, unattributed',
};

export interface Breakdown {
  /** Busy milliseconds by category (idle excluded). */
  categories: Array<[string, number]>;
  /** The functions with the most self time. */
  functions: Array<[string, number]>;
  busyMs: number;
  wallMs: number;
}

export function analyse(profile: CpuProfile, window: { from?: number; to?: number } = {}): Breakdown {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = categoryOf.get(id);
    if (known) return known;
    const node = byId.get(id)!;
    const special = Object.hasOwn(SPECIAL, node.callFrame.functionName) ? SPECIAL[node.callFrame.functionName] : undefined;
    let category = special;
    if (!category && node.callFrame.url) category = CATEGORIES.find(([, pattern]) => pattern.test(node.callFrame.url))?.[0];
    if (!category) {
      const up = parent.get(id);
      category = up === undefined ? 'other (node internals, builtins)' : classify(up);
    }
    categoryOf.set(id, category);
    return category;
  };

  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let time = profile.startTime;
  let wallFrom: number | undefined;
  let wallTo = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if ((window.from !== undefined && time < window.from) || (window.to !== undefined && time > window.to)) continue;
    wallFrom ??= time;
    wallTo = time;
    // A sample stands for the time until the next one.
    const weight = (profile.timeDeltas[i + 1] ?? delta) / 1000;
    const id = profile.samples[i]!;
    const category = classify(id);
    categories.set(category, (categories.get(category) ?? 0) + weight);
    const frame = byId.get(id)!.callFrame;
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + weight);
  }
  const idle = categories.get('idle') ?? 0;
  categories.delete('idle');
  const busyMs = [...categories.values()].reduce((a, b) => a + b, 0);
  return {
    categories: [...categories].sort((a, b) => b[1] - a[1]),
    functions: [...functions].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 25),
    busyMs,
    wallMs: busyMs + idle,
  };
}

export function describeBreakdown(b: Breakdown, per: number | undefined, unit: string): string {
  const each = (msTotal: number) => (per ? `${(msTotal / per).toFixed(2).padStart(7)} ms per ${unit}` : `${msTotal.toFixed(0).padStart(7)} ms`);
  const share = (msTotal: number) => `${((100 * msTotal) / b.busyMs).toFixed(1).padStart(5)} %`;
  return [
    `main thread busy ${b.busyMs.toFixed(0)} ms of ${b.wallMs.toFixed(0)} ms (${((100 * b.busyMs) / b.wallMs).toFixed(0)} %)${per ? `, ${(b.busyMs / per).toFixed(2)} ms per ${unit}` : ''}`,
    ...b.categories.map(([category, msTotal]) => `  ${share(msTotal)}  ${each(msTotal)}  ${category}`),
    'functions with the most self time:',
    ...b.functions.map(([name, msTotal]) => `  ${share(msTotal)}  ${each(msTotal)}  ${name}`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const file = args[0];
  if (!file) {
    process.stderr.write('usage: node bench/login/profile.ts PROFILE.cpuprofile [--per N] [--from µs --to µs]\n');
    process.exit(2);
  }
  const option = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${describeBreakdown(analyse(profile, { from: option('from'), to: option('to') }), option('per'), 'login')}\n`);
}
