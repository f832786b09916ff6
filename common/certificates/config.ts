// The `certificates` section of the configuration (common/config.ts includes it).
import { z } from 'zod';

export const certificatesSection = z
  .object({
    manager: z
      .enum(['none', 'local', 'barbican'])
      .default('none')
      .describe("Certificate manager resolving listener and pool TLS references: none (references are refused with 400), local (certificates stored with `argonaut cert store`, refs local://<id>), barbican (Barbican secrets and containers, as Octavia's barbican_cert_manager)."),
    localKey: z
      .string()
      .min(32)
      .nullable()
      .default(null)
      .describe('Secret (at least 32 characters) the local store is encrypted with (AES-256-GCM); required with manager local and by `argonaut cert`. Changing it makes stored certificates unreadable.'),
    rejectExpired: z
      .boolean()
      .default(true)
      .describe('Refuse (400) listener and pool references to certificates whose notAfter has passed (Octavia does not check this).'),
    barbican: z
      .object({
        endpoint: z.string().nullable().default(null).describe("Barbican's URL, e.g. http://127.0.0.1:9311 (null: the key-manager endpoint of the Keystone catalog)."),
        endpointInterface: z.enum(['public', 'internal', 'admin']).default('public').describe('Catalog interface of the key-manager endpoint.'),
        region: z.string().nullable().default(null).describe('Catalog region of the key-manager endpoint (null: keystone.region).'),
        timeoutMs: z.number().int().positive().default(30_000).describe('Timeout of one Barbican request.'),
      })
      .prefault({})
      .describe("The barbican manager; it reads as the keystone section's service user, after granting that user read access with the caller's token (Octavia's barbican_acl_auth)."),
  })
  .prefault({})
  .superRefine((c, ctx) => {
    if (c.manager === 'local' && !c.localKey) ctx.addIssue({ code: 'custom', path: ['localKey'], message: 'is required with manager local' });
  });

export type CertificatesSection = z.infer<typeof certificatesSection>;
