// A provider's flavor / availability-zone metadata: the capability list the API shows and the
// validation of flavor_data and availability_zone_data against it (Octavia uses JSON schema;
// the messages below follow jsonschema's wording, prefixed with the offending key).
import { UnsupportedOptionError, type Capability } from './provider.ts';

export type CapabilitySpec = Capability & { type: 'string' | 'boolean' | 'array'; enum?: string[] };

export function validateMetadata(specs: CapabilitySpec[], data: Record<string, unknown>): void {
  const known = new Map(specs.map((s) => [s.name, s]));
  const extra = Object.keys(data).filter((k) => !known.has(k));
  if (extra.length > 0) {
    throw new UnsupportedOptionError(
      `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
  for (const [key, value] of Object.entries(data)) {
    const spec = known.get(key)!;
    const ok = spec.type === 'array' ? Array.isArray(value) : typeof value === spec.type;
    if (!ok) throw new UnsupportedOptionError(`${key} ${JSON.stringify(value)} is not of type '${spec.type}'`);
    if (spec.enum && !spec.enum.includes(value as string)) {
      throw new UnsupportedOptionError(`${key} '${String(value)}' is not one of [${spec.enum.map((e) => `'${e}'`).join(', ')}]`);
    }
  }
}

export const toCapabilities = (specs: CapabilitySpec[]): Capability[] => specs.map(({ name, description }) => ({ name, description }));
