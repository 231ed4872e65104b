// Generation forwarded from the edge to the Node deployment (GENERATION=origin): for a plan or a model that
// does not fit a Worker (README "Edge"). The request goes through unchanged, Authorization included, so the
// origin authenticates it against its own key table; only the host changes.

const FORWARDED = /^\/v1\/(?:generations|completions|models)(?:\/|$)/;

/** Whether a path is served by the generation origin. */
export function forwardsToOrigin(pathname: string): boolean {
  return FORWARDED.test(pathname);
}

export async function forwardToOrigin(request: Request, origin: string): Promise<Response> {
  const incoming = new URL(request.url);
  const target = new URL(incoming.pathname + incoming.search, origin.endsWith('/') ? origin : `${origin}/`);
  const headers = new Headers(request.headers);
  headers.delete('host');
  headers.set('x-forwarded-host', incoming.host);
  try {
    return await fetch(target, { method: request.method, headers, body: request.body, redirect: 'manual' });
  } catch (e) {
    return Response.json({ error: { code: 'origin_unreachable', message: `generation origin ${target.origin} unreachable: ${(e as Error).message}` } }, { status: 502 });
  }
}
