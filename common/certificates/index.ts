// The certificate manager of a configuration (certificates.manager), or null when none is configured.
import type { ArgonautConfig } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../logging.ts';
import { BarbicanCertificateManager } from './barbican.ts';
import { LocalCertificateManager } from './local.ts';
import type { CertificateManager } from './types.ts';

export * from './types.ts';
export { BarbicanCertificateManager, parseBarbicanRef } from './barbican.ts';
export { LocalCertificateManager, LOCAL_REF_PREFIX, localRef, parseLocalRef, StoreError, type StoredEntry, type StoreInput } from './local.ts';
export { checkCertificateDates, crlSignedBy, pemCertificates, readCaCertificate, readCrl } from './x509.ts';

export async function createCertificateManager(
  config: Pick<ArgonautConfig, 'certificates' | 'keystone'>,
  db: Database,
  log: Logger,
): Promise<CertificateManager | null> {
  const c = config.certificates;
  if (c.manager === 'none') return null;
  if (c.manager === 'local') {
    if (!c.localKey) throw new Error('certificates.localKey is required with certificates.manager local');
    return new LocalCertificateManager(db, c.localKey);
  }
  if (!config.keystone.password) throw new Error('keystone.password is required with certificates.manager barbican (Barbican is read as the keystone service user)');
  const { serviceCredentials } = await import('../../driver/openstack/credentials.ts');
  const keystone = serviceCredentials(config, log);
  let userId: Promise<string> | null = null;
  return new BarbicanCertificateManager({
    credentials: {
      serviceToken: () => keystone.serviceToken(),
      invalidateServiceToken: () => keystone.invalidateServiceToken(),
      endpointFor: (type, options) => keystone.endpointFor(type, options),
      // The service user's id, as Keystone reports it for the service token itself.
      serviceUserId: () => {
        userId ??= keystone
          .serviceToken()
          .then((token) => keystone.validateToken(token))
          .then((ctx) => {
            if (!ctx.userId) throw new Error('Keystone did not report the service user id');
            return ctx.userId;
          });
        userId.catch(() => (userId = null));
        return userId;
      },
    },
    endpoint: c.barbican.endpoint,
    interface: c.barbican.endpointInterface,
    region: c.barbican.region ?? config.keystone.region,
    timeoutMs: c.barbican.timeoutMs,
    logger: log.child({ component: 'barbican' }),
  });
}
