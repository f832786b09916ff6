// /v2/argonaut/presets: the preset catalog (presets/) as an API extension. GET lists and shows the
// presets; POST /v2/argonaut/presets/{name}/apply builds the single-call load balancer create of a
// preset (presets/build.ts) and runs it as POST /v2/lbaas/loadbalancers would: same validation, same
// RBAC (loadbalancer:post), one transaction, the created load balancer with its graph as the answer.
import type Router from '@koa/router';
import { enforce } from '../access.ts';
import { errors } from '../errors.ts';
import type { Ctx } from '../services.ts';
import { buildLoadBalancerBody, parseApplyRequest, partsOf, PresetRequestError } from '../../presets/build.ts';
import type { CatalogEntry } from '../../presets/catalog.ts';
import type { Preset, PresetService } from '../../presets/schema.ts';
import { create as createLoadBalancer } from './loadbalancers.ts';

function serviceView(s: PresetService) {
  return {
    name: s.name,
    mode: s.mode,
    protocol: s.protocol,
    ports: s.ports,
    also_udp: s.also_udp,
    forwarding_method: s.forwarding,
    lb_algorithm: s.algorithm,
    session_persistence: s.persistence,
    healthmonitor: s.monitor,
    listeners: partsOf(s).map((p) => p.name),
  };
}

function presetView(entry: CatalogEntry, full: boolean) {
  const p: Preset = entry.preset;
  const summary = {
    name: p.name,
    title: p.title,
    description: p.description,
    source: p.source,
    built_in: entry.builtIn,
    modes: p.modes ? Object.keys(p.modes) : [],
    default_mode: p.default_mode ?? null,
  };
  if (!full) return summary;
  return {
    ...summary,
    ...(p.services
      ? { services: p.services.map(serviceView) }
      : { mode_details: Object.fromEntries(Object.entries(p.modes!).map(([name, m]) => [name, { description: m.description, services: m.services.map(serviceView) }])) }),
  };
}

function entryOf(ctx: Ctx): CatalogEntry {
  const name = ctx.params.name!;
  const entry = ctx.state.services.presets.get(name);
  if (!entry) throw errors.notFound('Preset', name);
  return entry;
}

/** Presets are catalog data like flavors: readable by whoever may list flavors. */
const enforceRead = (ctx: Ctx, action: string) => enforce(ctx, 'flavor', action, ctx.state.auth.projectId);

async function apply(ctx: Ctx): Promise<void> {
  const entry = entryOf(ctx);
  const raw = ctx.state.body;
  const inner = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>).preset : undefined;
  if (inner === undefined || inner === null) throw errors.mandatory('preset');
  const extra = Object.keys(raw as object).filter((k) => k !== 'preset');
  if (extra.length) throw errors.unknownAttributes('preset_', extra.sort());
  let body;
  try {
    body = buildLoadBalancerBody(entry.preset, parseApplyRequest(inner));
  } catch (e) {
    if (e instanceof PresetRequestError) throw errors.invalidInput(e.field, e.value, e.reason);
    throw e;
  }
  ctx.state.body = body;
  await createLoadBalancer(ctx);
}

export function routes(router: Router<any, any>): void {
  router.get('/presets', (ctx) => {
    enforceRead(ctx as Ctx, 'get_all');
    const presets = [...(ctx as Ctx).state.services.presets.values()].map((e) => presetView(e, false));
    presets.sort((a, b) => a.name.localeCompare(b.name));
    ctx.body = { presets };
  });
  router.get('/presets/:name', (ctx) => {
    enforceRead(ctx as Ctx, 'get_one');
    ctx.body = { preset: presetView(entryOf(ctx as Ctx), true) };
  });
  router.post('/presets/:name/apply', (ctx) => apply(ctx as Ctx));
}
