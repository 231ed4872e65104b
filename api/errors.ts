// One error shape for every failure: {"error": {"code", "message", "details"?}}. Handlers throw ApiError; the
// app's error handler turns it (and anything unexpected) into that JSON.
import type { ZodError } from 'zod';

export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra response headers (Retry-After on 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toBody() {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

/** zod issues as `details`, and a message naming the first offending field (dotted path). */
export function validationError(error: ZodError, prefix?: string): ApiError {
  const issues = error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.'), code: i.code, message: i.message }));
  const first = issues[0];
  const message = first ? `${first.path || '(body)'}: ${first.message}` : 'invalid request';
  return new ApiError(400, 'validation_failed', message, issues);
}

export const notFound = (code: string, message: string) => new ApiError(404, code, message);
