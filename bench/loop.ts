// `npm run bench:loop [-- --quick] [-- --preference topic|all]`: the simulation of issue 6 with its default
// settings (sim/presets.ts), results in bench/results/loop*.json and the chart bench/results/loop*.svg.
import { join } from 'node:path';
import { main } from '../sim/cli';

main(process.argv.slice(2), { out: join(import.meta.dirname, 'results') }).then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
