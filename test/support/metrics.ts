// Reading Prometheus' text exposition format the way a scraper would, for tests of `/metrics`.

/** The value of the sample `name` with exactly these labels, or 0 when the series does not exist yet. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(/,(?=[a-zA-Z_]\w*=")/).filter(Boolean);
    if (present.length === wanted.length && wanted.every((w) => present.includes(w))) return Number(match[3]);
  }
  return 0;
}
