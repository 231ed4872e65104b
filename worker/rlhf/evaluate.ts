import type { EvaluatePolicyOptions, EvaluatePolicyResult } from './index';
export async function evaluatePolicyImpl(_o: EvaluatePolicyOptions): Promise<EvaluatePolicyResult> {
  throw new Error('evaluatePolicy: not yet');
}
