// What a Nova amphora gets at boot: its agent settings file (amphora id, key, how to reach RabbitMQ),
// written by cloud-init from the user data (#cloud-config write_files, mode 0600). The server is
// booted with a config drive, so the user data reaches it without a metadata service on the
// management network. The image must write the files (cloud-init, or in Argonaut's own image,
// amphora/image/, the argonaut-amphora-config-drive service) and start the agent with
// `argonaut-amphora --config <settingsPath>` once the file is there.
//
// The key travels in the user data, as Octavia's amphora certificates travel in its config drive:
// Nova shows user data to the instance and to administrators (OS-EXT-SRV-ATTR:user_data).
import { stringify } from 'yaml';
import { agentSettingsSchema, type AgentSettingsInput, type AmqpMessagingInput } from '../../amphora/agent/settings.ts';

export const DEFAULT_AGENT_SETTINGS_PATH = '/etc/argonaut/amphora-agent.yaml';
/** Nova refuses larger user data (the base64 text). */
export const MAX_USER_DATA_BYTES = 65535;

export interface AgentTemplate {
  /** RabbitMQ as the amphorae reach it (the URL must be reachable from the management network). */
  messaging: Omit<AmqpMessagingInput, 'kind'>;
  heartbeatIntervalMs: number;
  /** Data plane workers; undefined: the agent's default (one per core of the instance). */
  dataplaneWorkers?: number;
  logLevel?: AgentSettingsInput['logLevel'];
}

/** The agent settings document of one amphora, validated (the issues never quote the key). */
export function agentSettings(template: AgentTemplate, amphoraId: string, key: Buffer): AgentSettingsInput {
  const document: AgentSettingsInput = {
    amphoraId,
    key: key.toString('hex'),
    // A VM may come up before its network or RabbitMQ: its agent keeps trying instead of exiting.
    messaging: { ...template.messaging, kind: 'amqp', initialConnectTimeoutMs: null },
    heartbeatIntervalMs: template.heartbeatIntervalMs,
    ...(template.dataplaneWorkers !== undefined ? { dataplane: { workers: template.dataplaneWorkers } } : {}),
    ...(template.logLevel ? { logLevel: template.logLevel } : {}),
  };
  const parsed = agentSettingsSchema.safeParse(document);
  if (!parsed.success) {
    throw new Error(`invalid agent settings for amphora ${amphoraId}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return document;
}

/** The #cloud-config document that writes the settings file. */
export function cloudConfig(settings: AgentSettingsInput, settingsPath: string): string {
  const doc = { write_files: [{ path: settingsPath, owner: 'root:root', permissions: '0600', content: stringify(settings) }] };
  return `#cloud-config\n${stringify(doc)}`;
}

/** Nova's user_data: the cloud-config, base64. */
export function userData(settings: AgentSettingsInput, settingsPath: string): string {
  const encoded = Buffer.from(cloudConfig(settings, settingsPath), 'utf8').toString('base64');
  if (encoded.length > MAX_USER_DATA_BYTES) throw new Error(`amphora user data is ${encoded.length} bytes in base64; Nova takes at most ${MAX_USER_DATA_BYTES}`);
  return encoded;
}
