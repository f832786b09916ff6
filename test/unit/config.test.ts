import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildConfig, configSchema, ConfigError } from '../../common/config.ts';

describe('configuration', () => {
  it('has embedded defaults: SQLite, noauth, 127.0.0.1:9876, amphora provider', () => {
    const cfg = buildConfig({});
    expect(cfg.api).toMatchObject({ host: '127.0.0.1', port: 9876, authStrategy: 'noauth', defaultProviderDriver: 'amphora' });
    expect(cfg.database.url).toBe('sqlite:var/argonaut.sqlite');
    expect(cfg.quotas.loadBalancer).toBe(-1);
  });

  it('accepts the example file and it matches the defaults', () => {
    const example = parse(readFileSync(new URL('../../etc/argonaut.example.yaml', import.meta.url), 'utf8'));
    expect(buildConfig(example)).toEqual(buildConfig({}));
  });

  it('documents every option', () => {
    const undocumented: string[] = [];
    for (const [section, schema] of Object.entries(configSchema.shape)) {
      const inner = (schema as any).unwrap?.() ?? schema;
      const shape = inner.shape ?? inner._zod?.def?.innerType?.shape ?? {};
      for (const [key, field] of Object.entries(shape)) if (!(field as any).description) undocumented.push(`${section}.${key}`);
    }
    expect(undocumented).toEqual([]);
  });

  it('rejects unknown sections and wrong types with the path of the option', () => {
    expect(() => buildConfig({ apii: {} })).toThrow(ConfigError);
    expect(() => buildConfig({ api: { port: 'x' } })).toThrow(/api\.port/);
  });

  it('refuses a default provider that is not enabled', () => {
    expect(() => buildConfig({ api: { defaultProviderDriver: 'nope' } })).toThrow(/defaultProviderDriver/);
  });
});
