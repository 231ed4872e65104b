// Pieces shared by route modules: the documented error responses and the opaque pagination cursor.
import { ErrorBody } from '../../shared/api-contract';
import { ApiError } from '../errors';

const descriptions: Record<number, string> = {
  400: 'Invalid request; `details` lists each offending field',
  401: 'Missing, unknown or revoked API key',
  403: 'The key lacks the required scope',
  404: 'Not found',
  409: 'Idempotency conflict: this id was used with another body',
  413: 'Body over the configured limit',
  415: 'Body is not application/json',
  429: 'Rate limited; see Retry-After',
};

/** OpenAPI `responses` entries for the given error statuses. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, { description: descriptions[s] ?? 'Error', content: { 'application/json': { schema: ErrorBody } } }]));
}

export const bearerSecurity = [{ bearerAuth: [] as string[] }];

/** Cursors are opaque to clients: a versioned, base64url-encoded position. */
export function encodeCursor(seq: number): string {
  return btoa(`v1:${seq}`).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function decodeCursor(cursor: string): number {
  let text = '';
  try {
    text = atob(cursor.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    // falls through to the error below
  }
  const m = /^v1:(\d{1,15})$/.exec(text);
  if (!m) throw new ApiError(400, 'invalid_cursor', 'cursor: not a cursor this API returned', [{ path: 'cursor', code: 'custom', message: 'invalid cursor' }]);
  return Number(m[1]);
}
