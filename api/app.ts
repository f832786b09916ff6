// Assembles the API service: middleware chain, routes under /v2 and /v2.0 (lbaas collections also
// without the lbaas prefix), the provider registry and the database.
import Router from '@koa/router';
import Koa from 'koa';
import type { ArgonautConfig } from '../common/config.ts';
import { Database } from '../common/db/database.ts';
import type { Logger } from '../common/logging.ts';
import { ProviderRegistry } from '../driver/registry.ts';
import { authMiddleware } from './auth/auth-middleware.ts';
import { keystoneClientFromConfig, type TokenValidator } from './auth/keystone-client.ts';
import { TokenCache } from './auth/token-cache.ts';
import { acceptJson, canonicalApiPath, faults, jsonBody, requestId, serverTiming, stripJsonSuffix } from './middleware.ts';
import type { Services } from './services.ts';
import { versionDocument } from './versions.ts';
import * as amphorae from './resources/amphorae.ts';
import * as availabilityZones from './resources/availability-zones.ts';
import * as flavors from './resources/flavors.ts';
import * as healthMonitors from './resources/healthmonitors.ts';
import * as l7policies from './resources/l7policies.ts';
import * as l7rules from './resources/l7rules.ts';
import * as listeners from './resources/listeners.ts';
import * as loadBalancers from './resources/loadbalancers.ts';
import * as members from './resources/members.ts';
import * as pools from './resources/pools.ts';
import * as providers from './resources/providers.ts';
import * as quotas from './resources/quotas.ts';
import * as presets from './resources/presets.ts';
import { loadCatalog } from '../presets/catalog.ts';

export interface ApiService {
  app: Koa;
  services: Services;
  /** Stops the workers and closes the database. */
  close(): Promise<void>;
}

const LBAAS_MODULES = [loadBalancers, listeners, pools, members, healthMonitors, l7policies, l7rules, quotas, providers, flavors, availabilityZones];

export interface ApiOverrides {
  /** Replaces the Keystone client (tests). */
  tokenValidator?: TokenValidator;
}

export async function createApiService(config: ArgonautConfig, log: Logger, db?: Database, overrides: ApiOverrides = {}): Promise<ApiService> {
  // A bad preset file stops the start before anything runs.
  const catalog = loadCatalog(config.presets.directory);
  const database = db ?? new Database({ url: config.database.url, poolMax: config.database.poolMax });
  await database.connect();
  if (config.database.migrateOnStart) await database.migrate();
  const registry = await ProviderRegistry.create(config, database, log);
  const services: Services = { config, db: database, providers: registry, log, presets: catalog };

  const app = new Koa({ proxy: false });
  app.context.state = {};
  app.use(serverTiming());
  app.use(requestId());
  app.use(faults(log));
  app.use(acceptJson());
  app.use(stripJsonSuffix());
  app.use(async (ctx, next) => {
    ctx.state.services = services;
    await next();
  });

  const root = new Router();
  root.get('/', (ctx) => versionDocument(ctx));
  root.get('/load-balancer/', (ctx) => versionDocument(ctx));
  if (config.api.healthcheckEnabled) {
    root.get('/healthcheck', (ctx) => {
      ctx.type = 'text/plain';
      ctx.body = 'OK';
    });
  }
  app.use(root.routes());

  app.use(authMiddleware(authOptions(config, log, overrides)));
  app.use(jsonBody(config.api.maxRequestBodySize));

  const lbaas = new Router();
  for (const mod of LBAAS_MODULES) mod.routes(lbaas);
  const octavia = new Router();
  amphorae.routes(octavia);
  const argonaut = new Router();
  presets.routes(argonaut);

  // /v2 and /v2.0 are aliases, and the lbaas collections answer with or without /lbaas: one
  // canonical path (/v2/lbaas/..., /v2/octavia/...) keeps a single copy of every route.
  app.use(canonicalApiPath());
  const api = new Router();
  api.get('/v2', (ctx) => {
    ctx.body = JSON.stringify('v2');
    ctx.type = 'application/json';
  });
  api.use('/v2/lbaas', lbaas.routes(), lbaas.allowedMethods());
  api.use('/v2/octavia', octavia.routes(), octavia.allowedMethods());
  api.use('/v2/argonaut', argonaut.routes(), argonaut.allowedMethods());
  app.use(api.routes());
  app.use(api.allowedMethods());

  await registry.resumePending();
  return {
    app,
    services,
    async close() {
      await registry.stop();
      await database.close();
    },
  };
}

function authOptions(config: ArgonautConfig, log: Logger, overrides: ApiOverrides) {
  if (config.api.authStrategy === 'noauth') return { strategy: 'noauth' as const };
  if (overrides.tokenValidator) return { strategy: 'keystone' as const, keystone: overrides.tokenValidator };
  const keystone = keystoneClientFromConfig(config.keystone, log);
  return { strategy: 'keystone' as const, keystone, cache: new TokenCache({ ttlMs: config.keystone.tokenCacheTtlSeconds * 1000 }), logger: log };
}
