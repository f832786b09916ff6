// Every preset file of presets/ validates against its schema; the schema refuses what a preset must
// not say; the builder turns a preset into the graph create body (one listener per port when proxied).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildLoadBalancerBody, parseApplyRequest, PresetRequestError } from '../../../presets/build.ts';
import { BUILT_IN_PRESETS_DIR, loadCatalog, loadPresetFile, PresetFileError } from '../../../presets/catalog.ts';
import { PresetSchema } from '../../../presets/schema.ts';

const service = (over: Record<string, unknown> = {}) => ({
  name: 'svc', mode: 'L7', protocol: 'TCP', ports: '80', persistence: null,
  monitor: { type: 'TCP', delay: 5, timeout: 5, max_retries: 2, reason: 'a connect' }, ...over,
});
const preset = (over: Record<string, unknown> = {}) => ({ name: 'x', title: 'X', description: 'd', source: 's', services: [service()], ...over });
const issues = (data: unknown) => {
  const r = PresetSchema.safeParse(data);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('preset files', () => {
  const files = readdirSync(BUILT_IN_PRESETS_DIR).filter((f) => /\.(ya?ml|json)$/.test(f));
  it('are exactly rhosp, harmonic-vos and wowza', () => {
    expect(files.sort()).toEqual(['harmonic-vos.yaml', 'rhosp.yaml', 'wowza.yaml']);
  });
  for (const file of files) {
    it(`${file} validates against the schema, and every monitor says why`, () => {
      const p = loadPresetFile(join(BUILT_IN_PRESETS_DIR, file));
      const services = p.services ?? Object.values(p.modes!).flatMap((m) => m.services);
      expect(services.length).toBeGreaterThan(0);
      for (const s of services) expect(s.monitor.reason.length, s.name).toBeGreaterThan(10);
    });
  }
});

describe('the preset schema refuses', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a bad port list', preset({ services: [service({ ports: '80,,90' })] }), /^services\.0\.ports: Value should be ports and ranges/],
    ['a range on a proxied service', preset({ services: [service({ ports: '5000-5010' })] }), /^services\.0\.ports: port ranges need DIRECT_ROUTING/],
    ['UDP on an HTTP service', preset({ services: [service({ protocol: 'HTTP', also_udp: true })] }), /^services\.0\.also_udp: only for TCP services/],
    ['direct routing of HTTP', preset({ services: [service({ protocol: 'HTTP', forwarding: 'DIRECT_ROUTING' })] }), /^services\.0\.forwarding: /],
    ['cookies on TCP', preset({ services: [service({ persistence: 'HTTP_COOKIE' })] }), /^services\.0\.persistence: HTTP_COOKIE needs an HTTP service/],
    ['LAST_SUCCESSFUL over UDP', preset({ services: [service({ also_udp: true, persistence: 'LAST_SUCCESSFUL' })] }), /^services\.0\.persistence: /],
    ['HTTP fields on a TCP monitor', preset({ services: [service({ monitor: { ...service().monitor, url_path: '/' } })] }), /^services\.0\.monitor\.url_path: only for HTTP and HTTPS/],
    ['a timeout over the delay', preset({ services: [service({ monitor: { ...service().monitor, timeout: 9 } })] }), /^services\.0\.monitor\.timeout: must not exceed delay/],
    ['a monitor without a reason', preset({ services: [service({ monitor: { type: 'TCP', delay: 5, timeout: 5, max_retries: 2 } })] }), /^services\.0\.monitor\.reason: /],
    ['two services of one name', preset({ services: [service(), service()] }), /^services\.1\.name: service name svc is used twice/],
    ['services and modes together', preset({ modes: { a: { description: 'a', services: [service()] } }, default_mode: 'a' }), /^services: give exactly one of services and modes/],
    ['a default mode that is not a mode', { ...preset({ services: undefined }), modes: { a: { description: 'a', services: [service()] } }, default_mode: 'b' }, /^default_mode: must name one of the modes/],
    ['an unknown field', preset({ colour: 'red' }), /Unrecognized key/],
  ];
  for (const [what, data, message] of cases) {
    it(what, () => {
      expect(issues(data).join('\n')).toMatch(message);
    });
  }

  it('a file whose name differs from its preset name, or two files of one name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'argonaut-preset-schema-'));
    try {
      writeFileSync(join(dir, 'other.json'), JSON.stringify(preset()));
      expect(() => loadCatalog(dir)).toThrow(PresetFileError);
      expect(() => loadCatalog(dir)).toThrow(/other\.json: name x differs from the file name other/);
      rmSync(join(dir, 'other.json'));
      writeFileSync(join(dir, 'x.json'), JSON.stringify(preset()));
      writeFileSync(join(dir, 'x.yaml'), JSON.stringify(preset()));
      expect(() => loadCatalog(dir)).toThrow(/preset x is defined twice/);
      rmSync(join(dir, 'x.yaml'));
      // An operator file replaces the built-in preset of the same name.
      writeFileSync(join(dir, 'rhosp.json'), JSON.stringify(preset({ name: 'rhosp' })));
      const catalog = loadCatalog(dir);
      expect(catalog.get('rhosp')).toMatchObject({ builtIn: false, preset: { services: [{ name: 'svc' }] } });
      expect(catalog.get('wowza')?.builtIn).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the preset builder', () => {
  const catalog = loadCatalog(null);
  it('gives a proxied multi-port service one listener per port and keeps a DR service whole', () => {
    const body = buildLoadBalancerBody(catalog.get('harmonic-vos')!.preset, parseApplyRequest({ vip_subnet_id: '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1', members: { Harmonic_Traffic: [{ address: '192.0.2.5' }] } }));
    const listeners = body.loadbalancer.listeners as any[];
    expect(listeners.map((l) => [l.name, l.protocol_port, l.additional_ports ?? null, l.also_udp ?? false, l.forwarding_method ?? 'PROXY'])).toEqual([
      ['Harmonic_Management_8080', 8080, null, false, 'PROXY'],
      ['Harmonic_Management_8443', 8443, null, false, 'PROXY'],
      ['Harmonic_Traffic', 1935, '554,50000-65535', true, 'DIRECT_ROUTING'],
    ]);
    const traffic = (body.loadbalancer.pools as any[]).find((p) => p.name === 'Harmonic_Traffic');
    expect(traffic.members).toEqual([{ address: '192.0.2.5', protocol_port: 1935, monitor_port: 8443 }]);
    expect(traffic.healthmonitor).toMatchObject({ type: 'HTTPS', url_path: '/admin/status', expected_body: 'Healthy' });
  });

  it('names the bad field of an apply request', () => {
    const bad = (input: unknown) => {
      try {
        parseApplyRequest(input);
      } catch (e) {
        return e instanceof PresetRequestError ? [e.field, e.value] : e;
      }
      return null;
    };
    expect(bad({ members: { a: [{ address: '300.1.1.1' }] } })).toEqual(['members.a[0].address', '300.1.1.1']);
    expect(bad({ members: { a: [{ address: '192.0.2.1', weight: 999 }] } })).toEqual(['members.a[0].weight', 999]);
    expect(bad({ vip_subnet_id: 'x' })).toEqual(['vip_subnet_id', 'x']);
    expect(bad({ nope: 1 })).toEqual(['nope', 1]);
    expect(bad({ members: {} })).toBeNull();
  });
});
