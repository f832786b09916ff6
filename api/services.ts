// What every request handler can reach. Built once per process in app.ts.
import type { ParameterizedContext } from 'koa';
import type { ArgonautConfig } from '../common/config.ts';
import type { Database } from '../common/db/database.ts';
import type { Logger } from '../common/logging.ts';
import type { ProviderRegistry } from '../driver/registry.ts';
import type { AuthContext } from './auth/auth-context.ts';
import type { CatalogEntry } from '../presets/catalog.ts';

export interface Services {
  config: ArgonautConfig;
  db: Database;
  providers: ProviderRegistry;
  log: Logger;
  /** The preset catalog (presets/), loaded at start. */
  presets: Map<string, CatalogEntry>;
}

export interface RequestState {
  auth: AuthContext;
  requestId: string;
  body: unknown;
  services: Services;
}

export type Ctx = ParameterizedContext<RequestState>;
