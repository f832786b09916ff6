// The service user of ../shared/peers (octavia/secret in project service), overridable by env.
const env = (name: string, fallback: string) => process.env[name] ?? fallback;

/** KeystoneClient options for the peers' service user at `authUrl`. */
export function peerServiceOptions(authUrl: string) {
  return {
    authUrl,
    username: env('ARGONAUT_KEYSTONE_SERVICE_USER', 'octavia'),
    password: env('ARGONAUT_KEYSTONE_SERVICE_PASSWORD', 'secret'),
    projectName: env('ARGONAUT_KEYSTONE_SERVICE_PROJECT', 'service'),
    userDomainName: 'Default',
    projectDomainName: 'Default',
    region: env('ARGONAUT_KEYSTONE_REGION', 'RegionOne'),
    timeoutMs: 20_000,
  };
}
