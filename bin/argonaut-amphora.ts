#!/usr/bin/env -S npx tsx
// The amphora agent: one process per amphora (see amphora/README.md, "The agent").
import { parseArgs } from 'node:util';
import { Agent } from '../amphora/agent/agent.ts';
import { AgentSettingsError, loadAgentSettings, type AgentSettings } from '../amphora/agent/settings.ts';
import { LocalDataPlane, type DataPlane } from '../amphora/dataplane/dataplane.ts';
import { ClusterDataPlane } from '../amphora/dataplane/workers/cluster.ts';
import { startVrrp } from '../amphora/vrrp/index.ts';
import { createLogger, type Logger } from '../common/logging.ts';
import { AmqpTransport } from '../common/transport/amqp-transport.ts';
import { hasIpcChannel, IpcTransport } from '../common/transport/ipc-transport.ts';
import type { AmphoraTransport } from '../common/transport/transport.ts';

const HELP = `argonaut-amphora: the amphora agent (one process per amphora)

Connects to RabbitMQ (or, with messaging.kind ipc, to its parent process) as the amphora, fetches its
configuration from the controller (retrying with back-off; nothing is served until a configuration
arrives), applies every configuration atomically to the data plane and acknowledges it with the applied
configVersion, serves the controller's orders in order, sends a heartbeat (listener/pool/member status
and traffic deltas) every heartbeatIntervalMs, and fetches its configuration again after each
reconnection to RabbitMQ. A configuration with a vrrp section (ACTIVE_STANDBY) also runs the election
that moves the VIP between the two amphorae (root, in the amphora's namespace) and shares the data
plane's persistence entries with the peer (TCP vrrp.syncPort).

Usage: argonaut-amphora --config FILE [--log-level LEVEL]

Options:
  --config FILE       Agent settings, YAML or JSON:
                        amphoraId: <uuid>                   required
                        key: <hex>  | keyFile: <path>       exactly one: deriveAmphoraKey(masterKey, amphoraId)
                                                            in hex (keyFile relative to the settings file)
                        messaging: {kind: amqp, url, prefix, ...}
                                                            transport options (common/transport); kind amqp is
                                                            the default; initialConnectTimeoutMs defaults to
                                                            null (retry forever)
                        messaging: {kind: ipc, ...}         the controller is the parent process, reached over
                                                            the IPC channel it started this process with (the
                                                            process compute driver); no AMQP options; exit 2
                                                            when there is no IPC channel
                        heartbeatIntervalMs: 10000
                        configFetch: {timeoutMs: 5000, initialDelayMs: 500, maxDelayMs: 30000, factor: 2, jitter: 0.2}
                        reconnectCheckMs: 250
                        dataplane: {workers: <cores>, drainTimeoutMs: 30000}
                        logLevel: info
  --log-level LEVEL   Overrides logLevel: trace, debug, info, warn, error, fatal, silent.
  -h, --help          Show this help.

Signals: SIGTERM and SIGINT stop the heartbeats and the orders, let the order being handled finish,
drain the data plane's connections (up to dataplane.drainTimeoutMs), close the transport (waiting up
to messaging.drainTimeoutMs for answers and unconfirmed heartbeats) and exit 0. The controller's
"shutdown" command does the same, and so does the parent going away when the agent was started with an
IPC channel (whatever messaging.kind): a child amphora never outlives its parent.
Logs: pino JSON lines on stdout.
Exit status: 0 after a clean stop, 1 when start-up or the stop failed, 2 for bad arguments or settings.
`;

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

function readArgs(argv: string[]): { config: string; logLevel?: string } | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  if (values.config === undefined) throw new Error('--config FILE is required');
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !LOG_LEVELS.has(logLevel)) throw new Error(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`);
  return { config: values.config, logLevel };
}

async function createDataPlane(settings: AgentSettings, log: Logger): Promise<DataPlane> {
  const dpLog = log.child({ component: 'dataplane' });
  if (settings.dataplane.workers === 0) return new LocalDataPlane({ log: dpLog });
  const cluster = new ClusterDataPlane({ workers: settings.dataplane.workers, log: dpLog, logLevel: settings.logLevel });
  await cluster.start();
  return cluster;
}

function connectTransport(settings: AgentSettings, logger: Logger): Promise<AmphoraTransport> {
  const identity = { role: 'amphora' as const, amphoraId: settings.amphoraId, key: settings.key };
  const { kind, ...options } = settings.messaging;
  return kind === 'ipc' ? IpcTransport.connect({ ...options, identity, logger }) : AmqpTransport.connect({ ...options, identity, logger });
}

async function main(): Promise<number> {
  let args: ReturnType<typeof readArgs>;
  try {
    args = readArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`argonaut-amphora: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args === null) {
    process.stdout.write(HELP);
    return 0;
  }
  let settings: AgentSettings;
  try {
    settings = await loadAgentSettings(args.config);
  } catch (err) {
    if (!(err instanceof AgentSettingsError)) throw err;
    process.stderr.write(`argonaut-amphora: ${err.message}\n`);
    return 2;
  }
  if (args.logLevel !== undefined) settings.logLevel = args.logLevel as AgentSettings['logLevel'];
  if (settings.messaging.kind === 'ipc' && !hasIpcChannel()) {
    process.stderr.write('argonaut-amphora: messaging.kind is ipc but this process has no IPC channel to a parent (it must be started by the process compute driver, or with child_process.fork)\n');
    return 2;
  }

  // The transport and the data plane add their own `component`; the agent's events have component "agent".
  const root = createLogger('argonaut-amphora', settings.logLevel).child({ amphoraId: settings.amphoraId });
  const log = root.child({ component: 'agent' });
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled promise rejection');
    process.exit(1);
  });

  let dataPlane: DataPlane;
  try {
    dataPlane = await createDataPlane(settings, root);
  } catch (err) {
    log.fatal({ err }, 'cannot start the data plane');
    return 1;
  }
  const agent = new Agent({
    amphoraId: settings.amphoraId,
    connect: () => connectTransport(settings, root),
    dataPlane,
    log,
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    configFetch: settings.configFetch,
    reconnectCheckMs: settings.reconnectCheckMs,
    drainTimeoutMs: settings.dataplane.drainTimeoutMs,
    transportDrainTimeoutMs: settings.messaging.drainTimeoutMs,
    // ACTIVE_STANDBY: the configuration's vrrp section starts the election (amphora/vrrp; root, in the amphora's namespace).
    startElection: (election, options) => startVrrp(election, { log: options.log, healthCheck: options.healthCheck }),
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log.info({ signal }, 'signal received');
      void agent.stop(signal);
    });
  }
  let startFailed = false;
  agent.start().catch((err: unknown) => {
    startFailed = true;
    log.fatal({ err }, 'amphora agent failed to start');
    void agent.stop('start-up failed');
  });
  if (typeof process.send === 'function') {
    // Started by a parent with an IPC channel (the process compute driver): when the parent goes
    // away, nobody can manage this amphora any more, so it stops instead of running orphaned.
    const parentGone = (): void => {
      log.warn('the parent process is gone (IPC channel closed); stopping');
      void agent.stop('parent gone');
    };
    if (process.connected) process.once('disconnect', parentGone);
    else parentGone(); // it went away while the data plane was starting
  }
  const result = await agent.stopped;
  return result.clean && !startFailed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`argonaut-amphora: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
