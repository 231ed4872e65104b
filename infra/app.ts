// CDK app entry (cdk.json: `npx tsx infra/app.ts`). Settings come from CDK context; see infra/config.ts.
import { buildPrefloopApp } from './stack';

const { app } = buildPrefloopApp();
app.synth();
