// The objects every route module receives: the injected dependencies plus the app-wide services built from them
// once per app (auth cache, rate limiter, group-commit writer). Route modules are `(app, ctx) => void`.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { type Sha256Hex, sha256Hex } from '../shared/hash';
import { type AuthContext, KeyAuthenticator } from './auth';
import type { AppDeps, AppSettings, Database } from './deps';
import { FeedbackWriter } from './feedback-writer';
import { GenerationWriter } from './generation-writer';
import { TokenBucketLimiter } from './rate-limit';

export type AppEnv = { Variables: { auth: AuthContext } };
export type App = OpenAPIHono<AppEnv>;

export interface AppContext {
  deps: AppDeps;
  db: Database;
  clock: () => number;
  settings: AppSettings;
  sha256: Sha256Hex;
  auth: KeyAuthenticator;
  limiter: TokenBucketLimiter;
  feedbackWriter: FeedbackWriter;
  generationWriter: GenerationWriter;
}

export function createAppContext(deps: AppDeps): AppContext {
  const sha256 = deps.sha256 ?? sha256Hex;
  return {
    deps,
    db: deps.db,
    clock: deps.clock,
    settings: deps.settings,
    sha256,
    auth: new KeyAuthenticator(deps.db, deps.clock, deps.settings.authCacheTtlMs, sha256),
    limiter: new TokenBucketLimiter(deps.settings.rateLimit),
    feedbackWriter: new FeedbackWriter(deps.db, { groupCommit: deps.groupCommit ?? true, inserter: deps.feedbackInserter }),
    generationWriter: new GenerationWriter(deps.db, { groupCommit: deps.groupCommit ?? true }),
  };
}

/** A route module: registers its routes (and their OpenAPI docs) on the app. */
export type RegisterRoutes = (app: App, ctx: AppContext) => void;
