// Checks admin API answers against openapi.yaml: the status must be one the operation documents,
// and the body must validate against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1
// uses it, with formats such as date-time checked).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

type Json = Record<string, unknown>;

export interface OpenApi {
  document: Json;
  /** Every documented operation: method, path template, scope. */
  operations: { method: string; path: string; scope: string | undefined; operation: Json }[];
  /** Asserts `status` is documented for the operation and `body` (JSON or empty) matches its schema. */
  check(method: string, path: string, status: number, body: unknown): void;
  /** Which operations have been checked so far, as `METHOD path status`. */
  readonly seen: Set<string>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export function loadOpenApi(file = join(import.meta.dirname, '..', '..', 'openapi.yaml')): OpenApi {
  const document = YAML.parse(readFileSync(file, 'utf8')) as Json;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: (document.components as Json) ?? {} });
  const resolve = (node: Json): Json => {
    let current = node;
    while (typeof current.$ref === 'string') {
      const parts = current.$ref.replace(/^#\//, '').split('/');
      current = parts.reduce<Json>((at, part) => at[part] as Json, document);
    }
    return current;
  };
  const operations: OpenApi['operations'] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    for (const method of METHODS) {
      const operation = item[method] as Json | undefined;
      if (operation) operations.push({ method: method.toUpperCase(), path, scope: operation['x-scope'] as string | undefined, operation });
    }
  }
  const validators = new Map<string, ValidateFunction | null>();
  const seen = new Set<string>();
  const servers = document.servers as { url: string }[];
  const base = servers[0]!.url;

  const find = (method: string, actual: string) => {
    const path = actual.startsWith(base) ? actual.slice(base.length) : actual;
    const found = operations.find((o) => o.method === method && new RegExp(`^${o.path.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path.split('?')[0]!));
    assert.ok(found, `${method} ${path} is not documented in openapi.yaml`);
    return found;
  };

  return {
    document,
    operations,
    seen,
    check(method, actualPath, status, body) {
      const op = find(method, actualPath);
      const responses = op.operation.responses as Record<string, Json>;
      const response = responses[String(status)];
      assert.ok(response, `${method} ${op.path} answered ${status}, which openapi.yaml does not document (${Object.keys(responses).join(', ')}): ${String(JSON.stringify(body)).slice(0, 300)}`);
      seen.add(`${method} ${op.path} ${status}`);
      const key = `${method} ${op.path} ${status}`;
      if (!validators.has(key)) {
        const schema = (resolve(response).content as Json | undefined)?.['application/json'] as Json | undefined;
        // $refs in the schema point into the document: rewrite them to the registered components.
        const rewritten = schema?.schema && JSON.parse(JSON.stringify(schema.schema).replaceAll('"#/components/', '"openapi#/components/'));
        validators.set(key, rewritten ? ajv.compile(rewritten as Json) : null);
      }
      const validate = validators.get(key);
      if (!validate) {
        assert.ok(body === '' || body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0), `${key} documents no body but got ${JSON.stringify(body)}`);
        return;
      }
      assert.ok(validate(body), `${key}: the body does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body, null, 1).slice(0, 1500)}`);
    },
  };
}
