// Run by dataplane-death.test.ts as its own process (cluster workers are forked from the primary):
// a data plane of two worker processes running a configuration with a vrrp section, followed by a
// VrrpRunner whose election is a stand-in. Prints one JSON line per event:
//   {"event":"ready","workers":[pid,...]}   then, on each "check" line read from stdin,
//   {"event":"health","ok":...,"reason":...,"workers":[pid,...]}
//   {"event":"fail","reason":...}           whenever the runner tells the election its health failed;
//   on each "snapshot" line, {"event":"snapshot","configVersion":N} once the data plane's snapshot answers
//   (the merged snapshot carries the first worker's version);
//   on each "apply N" line, {"event":"applied","configVersion":N} or {"event":"apply-failed","error":...}.
import cluster from 'node:cluster';
import { createInterface } from 'node:readline';
import { parseAmphoraConfig, type AmphoraConfigInput } from '../../common/amphora-config/index.ts';
import { createLogger } from '../../common/logging.ts';
import { VrrpRunner, type ElectionHealth } from '../../amphora/agent/vrrp-runner.ts';
import { ClusterDataPlane } from '../../amphora/dataplane/workers/cluster.ts';
import { config } from '../dataplane/helpers.ts';

const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const livePids = () => Object.values(cluster.workers ?? {}).flatMap((w) => (w && !w.isDead() && w.process.pid !== undefined ? [w.process.pid] : []));

const log = createLogger('cluster-serving-child', 'silent');
const dataPlane = new ClusterDataPlane({ workers: 2, log, logLevel: 'silent' });
await dataPlane.start();
const syncPort = Number(process.argv[2]);
const input: AmphoraConfigInput = {
  ...config([], []),
  vrrp: { role: 'MASTER', priority: 100, address: '127.0.0.71', peers: ['127.0.0.72'], interface: 'lo', authKey: 'ab'.repeat(32), syncPort },
};
await dataPlane.apply(input);

let healthCheck: () => ElectionHealth = () => ({ ok: false, reason: 'no election yet' });
const runner = new VrrpRunner({
  dataPlane,
  log,
  startElection: async (_settings, options) => {
    healthCheck = options.healthCheck;
    return {
      status: () => ({ state: 'MASTER', holdsVip: true }),
      on: () => undefined,
      fail: (reason: string) => say({ event: 'fail', reason }),
      stop: async () => {},
    };
  },
  onChange: () => {},
});
await runner.update(parseAmphoraConfig(input));
say({ event: 'ready', workers: livePids() });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'check') say({ event: 'health', ...healthCheck(), workers: livePids() });
  const apply = /^apply (\d+)$/.exec(line);
  if (apply) {
    void dataPlane.apply({ ...input, configVersion: Number(apply[1]) }).then(
      () => say({ event: 'applied', configVersion: Number(apply[1]) }),
      (err: Error) => say({ event: 'apply-failed', error: err.message }),
    );
  }
  if (line === 'snapshot') void dataPlane.snapshot().then((snap) => say({ event: 'snapshot', configVersion: snap.configVersion }));
}
await runner.stop();
await dataPlane.stop(0);
process.exit(0);
