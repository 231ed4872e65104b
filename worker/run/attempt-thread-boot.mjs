// Worker-thread bootstrap: registers tsx's TypeScript loader in this thread (loaders are per thread), then
// runs the TypeScript attempt. Plain .mjs so it loads under node, tsx and vitest alike.
import { register } from 'tsx/esm/api';

register();
await import('./attempt-thread.ts');
