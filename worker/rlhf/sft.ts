import type { RunSftOptions, RunSftResult } from './index';
export async function runSftImpl(_o: RunSftOptions): Promise<RunSftResult> {
  throw new Error('runSft: not yet');
}
