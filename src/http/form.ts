import type { Context } from 'koa';
import { AppError } from './errors.ts';

const LIMIT = 16 * 1024;

/** Reads an `application/x-www-form-urlencoded` body (the pages' small forms), size-limited. */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > LIMIT) throw new AppError(413, 'payload_too_large', 'The form is too large.');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
