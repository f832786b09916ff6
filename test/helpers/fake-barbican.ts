// A small fake Barbican v1 (node:http) for the barbican certificate manager's unit and API tests:
// secrets (metadata, payload), certificate containers and read ACLs, with per-project access.
// Tokens: `user:<project>` (a caller) or a service token from `validServiceTokens`; the service
// user reads only what an ACL grants it. It records every request.
// Its answers follow what Debian's Barbican 15 (Zed) answered in test/integration/barbican.test.ts's
// set-up (test/peers/barbican-up.sh): 403 with a description for another project's entity or ACL
// and for the service user before a grant, 404 for an unknown id (also a container's id asked for
// as a secret), `{"read": {"project-access": true}}` for an ACL never set, and payload content
// negotiation: a text/plain secret is served as text/plain (charset UTF-8) or
// application/octet-stream, a binary one only in its own type (406 otherwise). Payload types are
// Barbican's: text/plain, application/octet-stream, application/pkcs8.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const SERVICE_USER = 'octavia-user-id';

interface Entity {
  project: string;
  aclUsers: string[];
}
interface Secret extends Entity {
  payload: Buffer;
  contentType: string;
}
interface Container extends Entity {
  type: string;
  secrets: Record<string, string>;
}
export interface Seen {
  method: string;
  path: string;
  token: string;
  accept: string;
  body: unknown;
}

/** Barbican v1, enough of it: secrets (metadata, payload), containers, ACLs. Tokens: `user:<project>` or `svc-<n>`. */
export class FakeBarbican {
  secrets = new Map<string, Secret>();
  containers = new Map<string, Container>();
  seen: Seen[] = [];
  /** Service tokens Barbican accepts (others answer 401). */
  validServiceTokens = new Set(['svc-1']);
  server!: Server;
  /** The project of a caller token (undefined for service tokens). */
  userProject: (token: string) => string | undefined = (token) => /^user:(.+)$/.exec(token)?.[1];
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => this.handle(req.method!, req.url!, String(req.headers['x-auth-token'] ?? ''), String(req.headers.accept ?? ''), data, res));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Barbican holds only these payload content types (its POST refuses the others). */
  static readonly CONTENT_TYPES = ['text/plain', 'application/octet-stream', 'application/pkcs8'];

  addSecret(project: string, payload: Buffer | string, contentType = 'application/octet-stream'): string {
    if (!FakeBarbican.CONTENT_TYPES.includes(contentType)) throw new Error(`Barbican does not store payloads of type ${contentType}`);
    const id = randomUUID();
    this.secrets.set(id, { project, aclUsers: [], payload: Buffer.from(payload), contentType });
    return `http://barbican.invalid:9311/v1/secrets/${id}`;
  }

  addContainer(project: string, secrets: Record<string, string>): string {
    const id = randomUUID();
    this.containers.set(id, { project, aclUsers: [], type: 'certificate', secrets });
    return `http://barbican.invalid:9311/v1/containers/${id}`;
  }

  private handle(method: string, path: string, token: string, accept: string, data: string, res: ServerResponse): void {
    const body = data ? JSON.parse(data) : undefined;
    this.seen.push({ method, path, token, accept, body });
    const send = (status: number, json?: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(json === undefined ? '' : JSON.stringify(json));
    };
    const m = /^\/v1\/(secrets|containers)\/([0-9a-f-]{36})(\/payload|\/acl)?$/.exec(path);
    if (!m) return send(404, { code: 404, title: 'Not Found' });
    const [, kind, id, sub] = m;
    const entity = kind === 'secrets' ? this.secrets.get(id!) : this.containers.get(id!);
    const what = kind === 'secrets' ? 'Secret' : 'Container';
    const forbidden = (action: string) =>
      send(403, { code: 403, title: 'Forbidden', description: `${action} attempt not allowed - please review your user/project privileges` });
    const user = this.userProject(token);
    if (!user && !this.validServiceTokens.has(token)) {
      return send(401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    }
    if (!entity) return send(404, { code: 404, title: 'Not Found', description: `${what} not found.` });
    if (sub === '/acl') {
      if (user !== entity.project) return forbidden(`${what}ACL(s) ${method === 'GET' ? 'retrieval' : 'Update'}`);
      if (method === 'GET') return send(200, { read: entity.aclUsers.length ? { users: entity.aclUsers, 'project-access': true, created: 'x', updated: 'x' } : { 'project-access': true } });
      if (method === 'PUT') {
        entity.aclUsers = body.read.users;
        return send(200, { acl_ref: `${this.url}${path}` });
      }
      return send(405);
    }
    // Reads: the owner's users, or the service user once the ACL names it.
    if (user ? user !== entity.project : !entity.aclUsers.includes(SERVICE_USER)) return forbidden(`${what} retrieval`);
    if (kind === 'containers') {
      const c = entity as Container;
      return send(200, {
        type: c.type,
        status: 'ACTIVE',
        container_ref: `${this.url}${path}`,
        secret_refs: Object.entries(c.secrets).map(([name, secret_ref]) => ({ name, secret_ref })),
      });
    }
    const s = entity as Secret;
    if (!sub) return send(200, { status: 'ACTIVE', secret_ref: `${this.url}${path}`, content_types: { default: s.contentType } });
    const served = s.contentType === 'text/plain' ? (['text/plain', 'application/octet-stream'].includes(accept) ? accept : accept === '' || accept === '*/*' ? '*/*' : null)
      : accept === s.contentType ? accept : null;
    if (!served) return send(406, { code: 406, title: 'Not Acceptable', description: 'Secret payload retrieval issue seen - Wrong payload content-type.' });
    res.writeHead(200, { 'Content-Type': served === 'text/plain' ? 'text/plain; charset=UTF-8' : served });
    res.end(s.payload);
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }
}
