import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * CI runs on a clean clone, so vitest has no timings to order files by and starts the largest
 * files first. On two workers the wall time is then decided by where the few slow files land:
 * a four-minute browser test started last is four minutes of one worker alone. These start
 * first (slowest first, measured in CI's embedded leg); everything else keeps vitest's order.
 */
const SLOW_FIRST = [
  'web/test/e2e-pages.test.ts',
  // #11: about 100-140 s on a loaded machine (a minute of gateway kills, then the drain); not
  // yet timed in CI. In the external leg, which has no browser tests, it is the longest file.
  'server/test/gateway-failover.test.ts',
  // #11: 70-130 s here (three NATS nodes, 90 meters, a node killed, the drain).
  'server/test/broker-cluster.test.ts',
  'web/test/e2e-firmware-demo.test.ts',
  'web/test/e2e-collection.test.ts',
  'web/test/e2e.test.ts',
  'server/test/firmware-transfer.test.ts',
  // #11: ~60 s (four processes started), ~35 s (a broker restart).
  'server/test/roles-scale.test.ts',
  'server/test/reconnect-storm.test.ts',
  'web/test/e2e-tariffs.test.ts',
  'server/test/demo-faults.test.ts',
  'server/test/db-resilience.test.ts',
  'web/test/e2e-admin.test.ts',
  'web/test/e2e-firmware.test.ts',
  'web/test/e2e-bills.test.ts',
];

const rank = (f: TestSpecification): number => {
  const i = SLOW_FIRST.findIndex((s) => f.moduleId.endsWith(s));
  return i < 0 ? SLOW_FIRST.length : i;
};

export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: files not listed keep the base order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}
