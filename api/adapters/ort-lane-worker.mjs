// Entry of the lane worker thread: loads the TypeScript side through tsx. A worker's execArgv `--import tsx`
// does not reach the worker's own entry (measured: ERR_UNKNOWN_FILE_EXTENSION), and this also works where the
// parent is not under tsx at all (vitest).
import { tsImport } from 'tsx/esm/api';

await tsImport('./ort-lane-worker.ts', import.meta.url);
