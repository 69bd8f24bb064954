import type { MatrixError } from './errors.ts';

export interface RetryOptions {
  /** Tries per request, the first included. */
  maxAttempts: number;
  /** Back-off before the second try; doubles each time, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * The longest rate-limit wait honoured in place. A longer `retry_after_ms` fails the request
   * (still `retryable`, with `retryAfterMs`) so the caller can reschedule instead of stalling.
   */
  maxRateLimitWaitMs: number;
}

export const defaultRetryOptions: RetryOptions = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  maxRateLimitWaitMs: 60_000,
};

/** Milliseconds to wait before trying again after `attempt` failed, or undefined to give up. */
export function retryDelay(error: MatrixError, attempt: number, options: RetryOptions, random: () => number = Math.random): number | undefined {
  if (!error.retryable || attempt >= options.maxAttempts) return undefined;
  if (error.retryAfterMs !== undefined) {
    return error.retryAfterMs <= options.maxRateLimitWaitMs ? error.retryAfterMs : undefined;
  }
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  // Jitter keeps several workers that failed together from retrying together.
  return Math.round(exponential * (0.5 + random() / 2));
}
