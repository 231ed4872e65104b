import type { RunPpoOptions, RunPpoResult } from './index';
export async function runPpoImpl(_o: RunPpoOptions): Promise<RunPpoResult> {
  throw new Error('runPpo: not yet');
}
