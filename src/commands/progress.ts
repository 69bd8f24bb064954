// Progress of long commands (`sync`), on stderr so that stdout keeps only the result. On a terminal
// it is a cli-progress bar redrawn in place; otherwise (a pipe, a log file, CI) it is plain lines,
// a few per phase, since a redrawn bar would fill a log with carriage returns.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Begins a phase of `total` steps, e.g. `start('reading the wiki', 120, 'accounts')`; ends the previous one. */
  start(phase: string, total: number, unit: string): void;
  /** `done` steps of the phase are done. */
  update(done: number): void;
  /** Ends the current phase (showing it complete when it is). */
  stop(): void;
}

export interface ProgressOptions {
  /** Where progress goes; default stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** The command, prefixed to plain lines (`sync: reading the wiki: 50/120 accounts`). */
  command: string;
  /** Plain lines: at most one per this share of the phase (default 0.1), besides the first and the last. */
  lineEvery?: number;
  /** Plain lines: at least one per this many milliseconds while a phase moves (default 10 s). */
  lineAtLeastEveryMs?: number;
  clock?: () => number;
}

/** A terminal bar when the stream is a TTY, plain lines otherwise. */
export function progressOn(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream, options);
}

/** No progress at all, for callers that print their own. */
export const noProgress: Progress = { start() {}, update() {}, stop() {} };

class BarProgress implements Progress {
  readonly #stream: NodeJS.WritableStream;
  #bar: cliProgress.SingleBar | undefined;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
  }

  start(phase: string, total: number, unit: string): void {
    this.stop();
    this.#bar = new cliProgress.SingleBar(
      {
        stream: this.#stream as NodeJS.WriteStream,
        format: `${phase} [{bar}] {value}/{total} ${unit} | {eta_formatted} left`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(Math.max(total, 0), 0);
  }

  update(done: number): void {
    this.#bar?.update(done);
  }

  stop(): void {
    this.#bar?.stop();
    this.#bar = undefined;
  }
}

class LineProgress implements Progress {
  readonly #stream: NodeJS.WritableStream;
  readonly #command: string;
  readonly #every: number;
  readonly #atLeastEveryMs: number;
  readonly #clock: () => number;
  #phase: { name: string; total: number; unit: string; done: number; printed: number; printedAt: number } | undefined;

  constructor(stream: NodeJS.WritableStream, options: ProgressOptions) {
    this.#stream = stream;
    this.#command = options.command;
    this.#every = options.lineEvery ?? 0.1;
    this.#atLeastEveryMs = options.lineAtLeastEveryMs ?? 10_000;
    this.#clock = options.clock ?? Date.now;
  }

  start(phase: string, total: number, unit: string): void {
    this.stop();
    this.#phase = { name: phase, total, unit, done: 0, printed: 0, printedAt: this.#clock() };
    this.#line();
  }

  update(done: number): void {
    const p = this.#phase;
    if (!p || done === p.done) return;
    p.done = done;
    const step = Math.max(1, Math.ceil(p.total * this.#every));
    if (done >= p.total || done - p.printed >= step || this.#clock() - p.printedAt >= this.#atLeastEveryMs) this.#line();
  }

  stop(): void {
    const p = this.#phase;
    if (p && p.printed !== p.done) this.#line();
    this.#phase = undefined;
  }

  #line(): void {
    const p = this.#phase!;
    p.printed = p.done;
    p.printedAt = this.#clock();
    this.#stream.write(`${this.#command}: ${p.name}: ${p.done}/${p.total} ${p.unit}\n`);
  }
}
