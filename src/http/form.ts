import type { Context } from 'koa';
import { AppError } from './errors.ts';

const LIMIT = 16 * 1024;

/** Reads an `application/x-www-form-urlencoded` body (the pages' small forms), size-limited. */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  return new URLSearchParams(await readBody(ctx, 'The form is too large.'));
}

/** The request body as text, refused past LIMIT bytes. */
async function readBody(ctx: Context, tooLarge: string): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > LIMIT) throw new AppError(413, 'payload_too_large', tooLarge);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a JSON body (the admin API's), size-limited; an empty body is `{}`. */
export async function readJson(ctx: Context): Promise<unknown> {
  if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) return {};
  if (!ctx.is('application/json')) throw new AppError(415, 'unsupported_media_type', 'Send the body as application/json.');
  const body = await readBody(ctx, 'The body is too large.');
  try {
    return JSON.parse(body);
  } catch {
    throw new AppError(400, 'invalid_request', 'The body is not valid JSON.');
  }
}
