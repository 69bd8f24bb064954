// The README shows operators the snippets in config/synapse, config/mas and config/irc; the e2e and
// integration tests use those files. This keeps the README's copies identical to the files, so
// what people paste is what was tested.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Blocks between `<!-- file:<path> -->` and `<!-- /file -->`: path → the fenced block's content. */
function embeddedFiles(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- file:(\S+) -->\n([\s\S]*?)<!-- \/file -->/g)) {
    const [, path, body] = match as unknown as [string, string, string];
    const fenced = /^```[a-z]*\n([\s\S]*)```\n$/.exec(body);
    assert.ok(fenced, `the README block for ${path} must be exactly one fenced code block`);
    assert.ok(!blocks.has(path), `the README embeds ${path} twice`);
    blocks.set(path, fenced[1]!);
  }
  return blocks;
}

const snippetFiles = ['config/synapse', 'config/mas', 'config/irc'].flatMap((dir) =>
  readdirSync(new URL(dir, root))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => `${dir}/${f}`),
);

describe('README snippets', () => {
  const blocks = embeddedFiles(read('README.md'));

  test('every homeserver snippet file is in the README', () => {
    assert.ok(snippetFiles.length >= 4, `expected the Synapse and MAS snippets, found ${snippetFiles.join(', ')}`);
    assert.deepEqual([...blocks.keys()].sort(), [...snippetFiles].sort());
  });

  for (const path of snippetFiles) {
    test(`the README shows ${path} exactly`, () => {
      assert.equal(blocks.get(path), read(path), `README.md's copy of ${path} differs from the file: copy the file into the README block`);
    });
  }

  test('a changed file or a changed README block is caught', () => {
    const path = snippetFiles[0]!;
    const text = read(path);
    const readme = `<!-- file:${path} -->\n\`\`\`yaml\n${text.replace('client_id', 'client_idd')}\`\`\`\n<!-- /file -->\n`;
    assert.notEqual(embeddedFiles(readme).get(path), text);
    assert.throws(() => embeddedFiles(`<!-- file:${path} -->\n${text}<!-- /file -->\n`), /exactly one fenced code block/);
  });
});
