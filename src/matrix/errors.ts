import { HTTPError, MatrixError as SdkMatrixError, safeGetRetryAfterMs } from 'matrix-js-sdk';

/**
 * Error codes of our own, for failures that carry no Matrix `errcode`: no answer at all
 * (refused, reset, timed out), an answer that is not the JSON expected, or our own shutdown.
 */
export const NETWORK_ERROR = 'WMS_NETWORK_ERROR';
export const BAD_RESPONSE = 'WMS_BAD_RESPONSE';
export const ABORTED = 'WMS_ABORTED';

/**
 * A homeserver request failed. `status` is the homeserver's HTTP status (0 when it never
 * answered); `retryable` says whether the same request may succeed later unchanged (rate limits,
 * 5xx, network), so `M_FORBIDDEN` (the bot lacks power or membership) is never retryable.
 * `retryAfterMs` is set when the homeserver asked us to wait that long.
 */
export class MatrixError extends Error {
  readonly errcode: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** What was asked, without ids: e.g. `ban`, `room_state`. */
  readonly endpoint: string;

  constructor(
    endpoint: string,
    fields: { errcode: string; status: number; retryable: boolean; retryAfterMs?: number; detail: string; cause?: unknown },
  ) {
    const status = fields.status ? ` ${fields.status}` : '';
    super(`Matrix ${endpoint}:${status} ${fields.errcode}: ${fields.detail}`, { cause: fields.cause });
    this.name = 'MatrixError';
    this.endpoint = endpoint;
    this.errcode = fields.errcode;
    this.status = fields.status;
    this.retryable = fields.retryable;
    this.retryAfterMs = fields.retryAfterMs;
  }

  get rateLimited(): boolean {
    return this.errcode === 'M_LIMIT_EXCEEDED' || this.status === 429;
  }
}

function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Turns whatever the sdk threw into a MatrixError. */
export function toMatrixError(endpoint: string, error: unknown, aborted: boolean): MatrixError {
  if (error instanceof MatrixError) return error;
  if (aborted) {
    return new MatrixError(endpoint, { errcode: ABORTED, status: 0, retryable: false, detail: 'stopped before the homeserver answered', cause: error });
  }
  if (error instanceof SdkMatrixError) {
    const status = error.httpStatus ?? 0;
    const errcode = error.errcode ?? 'M_UNKNOWN';
    const limited = errcode === 'M_LIMIT_EXCEEDED' || status === 429;
    const retryAfterMs = limited ? safeGetRetryAfterMs(error, -1) : -1;
    return new MatrixError(endpoint, {
      errcode,
      status,
      retryable: limited || retryableStatus(status),
      ...(retryAfterMs >= 0 ? { retryAfterMs } : {}),
      detail: typeof error.data.error === 'string' ? error.data.error : error.message,
      cause: error,
    });
  }
  if (error instanceof HTTPError) {
    // An error page that is not Matrix JSON, e.g. a reverse proxy's 502.
    const status = error.httpStatus ?? 0;
    const retryAfterMs = status === 429 ? safeGetRetryAfterMs(error, -1) : -1;
    return new MatrixError(endpoint, {
      errcode: 'M_UNKNOWN',
      status,
      retryable: retryableStatus(status),
      ...(retryAfterMs >= 0 ? { retryAfterMs } : {}),
      detail: `HTTP ${status} without a Matrix error body`,
      cause: error,
    });
  }
  if (error instanceof SyntaxError) {
    return new MatrixError(endpoint, { errcode: BAD_RESPONSE, status: 200, retryable: false, detail: 'the answer is not JSON', cause: error });
  }
  const detail = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
  return new MatrixError(endpoint, { errcode: NETWORK_ERROR, status: 0, retryable: true, detail: `no answer (${detail})`, cause: error });
}

export function badResponse(endpoint: string, detail: string): MatrixError {
  return new MatrixError(endpoint, { errcode: BAD_RESPONSE, status: 200, retryable: false, detail });
}
