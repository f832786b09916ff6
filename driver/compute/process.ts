// The `process` compute driver: each amphora is a child process of the controller running the agent
// (bin/argonaut-amphora.ts), with its own directory <stateDir>/amphorae/<amphoraId>/ holding its
// settings (agent.yaml, mode 0600: it holds the amphora's key) and its log (agent.log: the agent's
// JSON lines on stdout, and anything it writes on stderr, appended).
//
// Messaging `ipc` (the embedded default, no RabbitMQ): the agent reaches the controller's
// InProcessBroker through an IpcBrokerPort on its IPC channel. Messaging `amqp`: the agent connects
// to RabbitMQ itself. Either way the child gets an IPC channel, and the agent stops when it closes:
// an amphora never outlives the controller that started it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { agentSettingsSchema, type AgentSettingsInput, type AmqpMessagingInput, type IpcMessagingInput } from '../../amphora/agent/settings.ts';
import type { Logger } from '../../common/logging.ts';
import { AmphoraIdSchema } from '../../common/messages.ts';
import type { InProcessBroker } from '../../common/transport/in-process-transport.ts';
import { IpcBrokerPort } from '../../common/transport/ipc-broker-port.ts';
import type { AmphoraBootRequest, BootedAmphora, ComputeDriver } from './compute-driver.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = path.join(ROOT, 'bin/argonaut-amphora.ts');

export type ProcessMessaging =
  /** The agent talks to `broker` (the controller's) over its IPC channel; `settings`: transport timeouts and limits. */
  | { kind: 'ipc'; broker: InProcessBroker; settings?: Omit<IpcMessagingInput, 'kind'> }
  /** The agent connects to RabbitMQ with these transport options (url, prefix...). */
  | { kind: 'amqp'; settings: Omit<AmqpMessagingInput, 'kind'> };

export interface ProcessComputeOptions {
  /** Each amphora gets <stateDir>/amphorae/<amphoraId>/ (created, mode 0700). */
  stateDir: string;
  messaging: ProcessMessaging;
  logger: Logger;
  /** The agents' heartbeatIntervalMs (default 10000). */
  heartbeatIntervalMs?: number;
  /** The agents' data plane workers (default 0: traffic served in the agent process). */
  dataplaneWorkers?: number;
  /** How long an agent lets established connections finish when it is destroyed (default 2000). */
  drainTimeoutMs?: number;
  /** How long destroy() waits after SIGTERM before SIGKILL (default 5000). */
  stopTimeoutMs?: number;
  /** The agents' log level (default info). */
  logLevel?: AgentSettingsInput['logLevel'];
  /** Rewrites the agent's command line before it is spawned (the netns driver prefixes `ip netns exec <namespace>`). */
  wrapCommand?: (req: AmphoraBootRequest, command: string, args: string[]) => { command: string; args: string[] };
}

interface AmphoraProcess {
  computeId: string;
  amphoraId: string;
  dir: string;
  child: ChildProcess;
  port?: IpcBrokerPort;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  destroying?: Promise<void>;
}

export class ProcessComputeDriver implements ComputeDriver {
  readonly name = 'process';
  private readonly log: Logger;
  private readonly children = new Map<string, AmphoraProcess>();
  private stopped = false;
  private exitHook?: () => void;

  constructor(private readonly options: ProcessComputeOptions) {
    this.log = options.logger.child({ component: 'compute', driver: 'process' });
  }

  async boot(req: AmphoraBootRequest): Promise<BootedAmphora> {
    if (this.stopped) throw new Error('the process compute driver is stopped');
    // The id names a directory: only a UUID is accepted.
    const amphoraId = AmphoraIdSchema.parse(req.amphoraId);
    for (const earlier of [...this.children.values()].filter((p) => p.amphoraId === amphoraId)) {
      if (earlier.destroying) {
        await Promise.allSettled([earlier.destroying]); // its directory goes first (an error is its destroy()'s caller's)
      } else if (isRunning(earlier.child)) {
        throw new Error(`amphora ${amphoraId} is already running (${earlier.computeId})`);
      } else {
        // It died and was not destroyed: the new process takes over its directory, so destroying
        // the old computeId later must not remove it.
        this.children.delete(earlier.computeId);
        earlier.port?.detach('superseded');
        this.log.info({ amphoraId, computeId: earlier.computeId }, 'earlier process of this amphora forgotten; it is booted again');
      }
    }

    const settings = this.agentSettings(amphoraId, req.key);
    const dir = this.amphoraDir(amphoraId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const settingsFile = path.join(dir, 'agent.yaml');
    await writeFile(settingsFile, stringify(settings), { mode: 0o600 });
    await chmod(settingsFile, 0o600); // in case the file existed with other permissions

    const logFd = openSync(path.join(dir, 'agent.log'), 'a', 0o600);
    let child: ChildProcess;
    try {
      const agent = { command: process.execPath, args: ['--import', 'tsx', AGENT, '--config', settingsFile] };
      const cmd = this.options.wrapCommand ? this.options.wrapCommand(req, agent.command, agent.args) : agent;
      child = spawn(cmd.command, cmd.args, {
        cwd: ROOT, // where `--import tsx` is resolved
        stdio: ['ignore', logFd, logFd, 'ipc'],
        // Its own process group, so that SIGKILL reaches the data plane workers too.
        detached: true,
      });
    } finally {
      closeSync(logFd); // the child has its own copy
    }
    // Attached before the child can send anything: its first frame (hello) must find the port.
    const port =
      this.options.messaging.kind === 'ipc' ? new IpcBrokerPort({ child, broker: this.options.messaging.broker, amphoraId, logger: this.log }) : undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      port?.detach('spawn failed');
      throw new Error(`cannot start the agent of amphora ${amphoraId}: ${(err as Error).message}`, { cause: err });
    }
    const pid = child.pid as number;
    const computeId = `process:${pid}:${amphoraId}`;
    const record: AmphoraProcess = {
      computeId,
      amphoraId,
      dir,
      child,
      port,
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    };
    child.on('error', (err) => this.log.error({ err, amphoraId, computeId, pid }, 'amphora process error'));
    child.once('exit', (code, signal) => {
      const expected = record.destroying !== undefined;
      this.log[expected ? 'info' : 'warn']({ amphoraId, computeId, pid, code, signal, expected }, 'amphora process exited');
    });
    this.children.set(computeId, record);
    this.installExitHook();
    if (this.stopped) {
      await this.destroy(computeId);
      throw new Error('the process compute driver was stopped while the amphora was booting');
    }
    this.log.info(
      { amphoraId, loadBalancerId: req.loadBalancerId, role: req.role, computeId, pid, messaging: this.options.messaging.kind, dir },
      'amphora process started',
    );
    return { computeId, lbNetworkIp: null };
  }

  destroy(computeId: string): Promise<void> {
    const record = this.children.get(computeId);
    if (!record) return this.removeLeftover(computeId);
    record.destroying ??= this.terminate(record);
    return record.destroying;
  }

  async isAlive(computeId: string): Promise<boolean> {
    const record = this.children.get(computeId);
    return record !== undefined && isRunning(record.child);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.children.keys()].map((id) => this.destroy(id)));
    if (this.exitHook) process.off('exit', this.exitHook);
    this.exitHook = undefined;
  }

  // ---- internals -----------------------------------------------------------------------------------

  private amphoraDir(amphoraId: string): string {
    return path.join(this.options.stateDir, 'amphorae', amphoraId);
  }

  private agentSettings(amphoraId: string, key: Buffer): AgentSettingsInput {
    const o = this.options;
    const document: AgentSettingsInput = {
      amphoraId,
      key: key.toString('hex'),
      messaging: o.messaging.kind === 'ipc' ? { ...o.messaging.settings, kind: 'ipc' } : { ...o.messaging.settings, kind: 'amqp' },
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? 10_000,
      dataplane: { workers: o.dataplaneWorkers ?? 0, drainTimeoutMs: o.drainTimeoutMs ?? 2000 },
      logLevel: o.logLevel ?? 'info',
    };
    // Refused here rather than by the agent (exit 2 in a log file); the issues never quote the key.
    const parsed = agentSettingsSchema.safeParse(document);
    if (!parsed.success) {
      throw new Error(`invalid agent settings for amphora ${amphoraId}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    return document;
  }

  /** SIGTERM (the agent drains and exits), SIGKILL to its process group after stopTimeoutMs, then the directory goes. */
  private async terminate(record: AmphoraProcess): Promise<void> {
    const { child, computeId, amphoraId } = record;
    const timeoutMs = this.options.stopTimeoutMs ?? 5000;
    if (isRunning(child)) {
      this.log.info({ amphoraId, computeId, pid: child.pid, timeoutMs }, 'stopping amphora process');
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([record.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
      clearTimeout(timer);
      if (!inTime && isRunning(child)) {
        this.log.warn({ amphoraId, computeId, pid: child.pid, timeoutMs }, 'amphora process did not stop in time; killing it');
        killGroup(child);
      }
      await record.exited;
    }
    record.port?.detach('destroyed');
    await rm(record.dir, { recursive: true, force: true });
    this.children.delete(computeId);
    this.log.info({ amphoraId, computeId }, 'amphora destroyed');
  }

  /**
   * A computeId this driver does not know (started by an earlier run of the controller, whose
   * agents stopped with it): its directory is removed unless the amphora runs here again.
   */
  private async removeLeftover(computeId: string): Promise<void> {
    const amphoraId = /^process:\d+:(.+)$/.exec(computeId)?.[1];
    if (amphoraId === undefined || !AmphoraIdSchema.safeParse(amphoraId).success) {
      this.log.warn({ computeId }, 'destroy of an unknown computeId: nothing to do');
      return;
    }
    if ([...this.children.values()].some((p) => p.amphoraId === amphoraId)) {
      this.log.info({ computeId, amphoraId }, 'destroy of an earlier process of an amphora that runs again: nothing to do');
      return;
    }
    await rm(this.amphoraDir(amphoraId), { recursive: true, force: true });
    this.log.info({ computeId, amphoraId }, 'destroy of an unknown computeId: leftover directory removed');
  }

  /** Should the controller exit without stop(), its agents are told to stop too (they also see the IPC channel close). */
  private installExitHook(): void {
    if (this.exitHook) return;
    this.exitHook = () => {
      for (const { child } of this.children.values()) if (isRunning(child)) child.kill('SIGTERM');
    };
    process.on('exit', this.exitHook);
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
