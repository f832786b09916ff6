// /v2/lbaas/providers: the enabled provider drivers, and what each accepts in flavor and
// availability zone profiles.
import type Router from '@koa/router';
import type { Capability, ProviderDriver } from '../../driver/provider.ts';
import { enforce } from '../access.ts';
import { errors } from '../errors.ts';
import { parseFields, project } from '../list-query.ts';
import { checkWithProvider } from '../mutations.ts';
import type { Ctx } from '../services.ts';

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

async function listProviders(ctx: Ctx): Promise<void> {
  enforce(ctx, 'provider', 'get_all', ctx.state.auth.projectId);
  const fields = parseFields(ctx.query as Record<string, string | string[]>);
  ctx.body = { providers: ctx.state.services.providers.list().map((p) => project({ name: p.name, description: p.description }, fields)) };
}

/** Capabilities of one provider, with Octavia's exact `name` / `description` filters and `fields`. */
async function listCapabilities(ctx: Ctx, policy: string, key: string, read: (driver: ProviderDriver) => Capability[]): Promise<void> {
  enforce(ctx, policy, 'get_all', ctx.state.auth.projectId);
  const { providers } = ctx.state.services;
  const name = ctx.params.provider!;
  if (!providers.isEnabled(name)) throw errors.providerNotEnabled(name);
  const driver = providers.get(name);
  if (!driver) throw errors.providerNotFound(name);
  let capabilities: Capability[] = [];
  checkWithProvider(driver, name, () => {
    capabilities = read(driver);
  });
  const nameFilter = first(ctx.query.name);
  const descriptionFilter = first(ctx.query.description);
  if (nameFilter) capabilities = capabilities.filter((c) => c.name === nameFilter);
  if (descriptionFilter) capabilities = capabilities.filter((c) => c.description === descriptionFilter);
  const fields = parseFields(ctx.query as Record<string, string | string[]>);
  ctx.body = { [key]: capabilities.map((c) => project({ name: c.name, description: c.description }, fields)) };
}

export function routes(router: Router<any, any>): void {
  router.get('/providers', (ctx) => listProviders(ctx as Ctx));
  router.get('/providers/:provider/flavor_capabilities', (ctx) =>
    listCapabilities(ctx as Ctx, 'provider-flavor', 'flavor_capabilities', (d) => d.flavorCapabilities()),
  );
  router.get('/providers/:provider/availability_zone_capabilities', (ctx) =>
    listCapabilities(ctx as Ctx, 'provider-availability-zone', 'availability_zone_capabilities', (d) => d.availabilityZoneCapabilities()),
  );
}
