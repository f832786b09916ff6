// A controller stand-in for process.test.ts: boots one amphora with the process driver, prints its
// computeId, then exits normally without calling stop() (the driver's exit hook and the closed IPC
// channel must stop the agent). argv[2]: the state directory.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { ProcessComputeDriver } from '../../../driver/compute/process.ts';
import { InProcessBroker } from '../../../common/transport/in-process-transport.ts';
import { deriveAmphoraKey } from '../../../common/transport/signing.ts';

const driver = new ProcessComputeDriver({
  stateDir: process.argv[2],
  messaging: { kind: 'ipc', broker: new InProcessBroker() },
  logger: pino({ level: 'silent' }),
});
const amphoraId = randomUUID();
const booted = await driver.boot({ amphoraId, loadBalancerId: randomUUID(), key: deriveAmphoraKey('parent-test-master-key-0123456789', amphoraId), role: 'STANDALONE' });
process.stdout.write(`${booted.computeId}\n`);
// Long enough for the agent to be up (it keeps asking for its config: no controller answers here).
setTimeout(() => process.exit(0), 1500);
