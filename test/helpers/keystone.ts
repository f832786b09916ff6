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

export interface IssuedToken {
  token: string;
  projectId: string;
  userId: string;
  /** Role names, lower-cased. */
  roles: string[];
  /** As Keystone wrote it (ISO 8601, microseconds). */
  expiresAt: string;
}

/** A project-scoped token for a user of the Default domain (password authentication). */
export async function issueToken(authUrl: string, user: string, password: string, project: string): Promise<IssuedToken> {
  const res = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
    signal: AbortSignal.timeout(60_000),
  });
  const token = res.headers.get('x-subject-token');
  if (res.status !== 201 || !token) throw new Error(`Keystone refused a token for ${user} in ${project}: HTTP ${res.status}`);
  const body = (await res.json()) as { token: { project: { id: string }; user: { id: string }; roles: Array<{ name: string }>; expires_at: string } };
  return {
    token,
    projectId: body.token.project.id,
    userId: body.token.user.id,
    roles: body.token.roles.map((r) => r.name.toLowerCase()),
    expiresAt: body.token.expires_at,
  };
}
