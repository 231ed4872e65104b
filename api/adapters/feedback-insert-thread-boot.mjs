// Worker-thread bootstrap for the feedback insert thread: registers tsx's TypeScript loader in this thread
// (loaders are per thread), then runs the TypeScript body. Plain .mjs so it loads under node, tsx and vitest alike.
import { register } from 'tsx/esm/api';

register();
await import('./feedback-insert-thread-body.ts');
