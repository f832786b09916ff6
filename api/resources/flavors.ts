// /v2/lbaas/flavors and /v2/lbaas/flavorprofiles: operator-managed load balancer flavors (readable
// by every project) and the provider-specific profiles behind them (admin only). The profile
// handlers are generic: availability-zones.ts reuses them for availability zone profiles.
import type Router from '@koa/router';
import { Op, UniqueConstraintError, type Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import type { TableName } from '../../common/db/tables.ts';
import { UnsupportedOptionError } from '../../driver/provider.ts';
import { enforce } from '../access.ts';
import { col, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors, pyStr } from '../errors.ts';
import { checkWithProvider, newId } from '../mutations.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import type { ApiObject } from '../views.ts';

/** Octavia reserves a row with this id (the name, for zones); it is never shown. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

const callerProject = (ctx: Ctx) => ctx.state.auth.projectId;

// ---- flavors ----------------------------------------------------------------------------------

async function flavorViews(_db: Services['db'], rows: Row[]): Promise<ApiObject[]> {
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    description: r.description ?? '',
    enabled: Boolean(r.enabled),
    flavor_profile_id: r.flavor_profile_id,
  }));
}

export const flavorSpec: ResourceSpec = {
  table: 'flavor',
  display: 'Flavor',
  singular: 'flavor',
  plural: 'flavors',
  linksKey: 'flavors_links',
  policy: 'flavor',
  idColumn: 'id',
  hasTags: false,
  hasCreatedAt: false,
  projectScoped: false,
  hidden: { id: { [Op.ne]: NIL_UUID } },
  view: flavorViews,
  columns: {
    id: col('id'),
    name: col('name'),
    description: col('description'),
    enabled: col('enabled', 'bool'),
    flavor_profile_id: col('flavor_profile_id'),
  },
};

const flavorPost: Schema = {
  name: { type: string({ max: 255 }), mandatory: true },
  description: { type: string({ max: 255 }) },
  enabled: { type: boolean },
  flavor_profile_id: { type: uuid, mandatory: true },
};

const flavorPut: Schema = {
  name: { type: string({ max: 255 }) },
  description: { type: string({ max: 255 }) },
  enabled: { type: boolean },
};

/**
 * Columns that are NOT NULL in the database: Octavia lets a null through to the database (a 500);
 * here it is refused like the profiles' nulls are (`None is not a valid option for <field>`).
 */
function refuseNulls(body: Body, fields: string[]): void {
  for (const f of fields) if (f in body && body[f] === null) throw errors.invalidOption(null, f);
}

const isUnique = (err: unknown) => err instanceof UniqueConstraintError;

async function findFlavor(services: Services, id: string, t?: Transaction): Promise<Row | null> {
  const { db } = services;
  const run = async () => (await db.models.flavor.findByPk(id, { raw: true, transaction: t, lock: t ? db.lock : undefined })) as Row | null;
  return t ? run() : db.read(run);
}

async function showFlavor(ctx: Ctx): Promise<void> {
  enforce(ctx, 'flavor', 'get_one', callerProject(ctx));
  const id = ctx.params.id!;
  if (id === NIL_UUID) throw errors.notFound('Flavor', id);
  const row = await findFlavor(ctx.state.services, id);
  if (!row) throw errors.notFound('Flavor', id);
  await showResource(ctx, flavorSpec, row, callerProject(ctx));
}

async function createFlavor(ctx: Ctx): Promise<void> {
  const { db } = ctx.state.services;
  const body = parseRequest(ctx.state.body, 'flavor', flavorPost, 'flavor_');
  enforce(ctx, 'flavor', 'post', callerProject(ctx));
  refuseNulls(body, ['enabled']);
  const profileId = body.flavor_profile_id as string;
  const name = body.name as string;
  const row: Row = { id: newId(), name, description: body.description ?? null, enabled: body.enabled ?? true, flavor_profile_id: profileId };
  try {
    await db.tx(async (t) => {
      const profile = await findProfile(ctx.state.services, flavorProfileKind, profileId, t);
      if (!profile) throw errors.notFound('Flavor Profile', profileId);
      if (await db.models.flavor.count({ where: { name }, transaction: t })) throw errors.recordExists('flavor', name);
      await db.models.flavor.create(row, { transaction: t });
    });
  } catch (err) {
    if (isUnique(err)) throw errors.recordExists('flavor', name);
    throw err;
  }
  ctx.status = 201;
  ctx.body = { flavor: (await flavorViews(db, [row]))[0] };
}

async function updateFlavor(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const body = parseRequest(ctx.state.body, 'flavor', flavorPut, 'flavor_');
  enforce(ctx, 'flavor', 'put', callerProject(ctx));
  if (id === NIL_UUID) throw errors.notFound('Flavor', id);
  refuseNulls(body, ['name', 'enabled']);
  let row: Row;
  try {
    row = await db.tx(async (t) => {
      const found = await findFlavor(services, id, t);
      if (!found) throw errors.notFound('Flavor', id);
      if (typeof body.name === 'string' && body.name !== found.name) {
        if (await db.models.flavor.count({ where: { name: body.name }, transaction: t })) throw errors.recordExists('flavor', body.name);
      }
      if (Object.keys(body).length > 0) await db.models.flavor.update(body, { where: { id }, transaction: t });
      return { ...found, ...body };
    });
  } catch (err) {
    if (isUnique(err)) throw errors.recordExists('flavor', body.name as string);
    throw err;
  }
  ctx.body = { flavor: (await flavorViews(db, [row]))[0] };
}

async function deleteFlavor(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  enforce(ctx, 'flavor', 'delete', callerProject(ctx));
  if (id === NIL_UUID) throw errors.notFound('Flavor', id);
  await db.tx(async (t) => {
    if (!(await findFlavor(services, id, t))) throw errors.notFound('Flavor', id);
    const users = await db.models.load_balancer.count({ where: { flavor_id: id, provisioning_status: { [Op.ne]: 'DELETED' } }, transaction: t });
    if (users > 0) throw errors.inUse('Flavor', id);
    // Deleted load balancers keep their rows until purged; like Octavia, point them at the reserved nil-UUID row.
    await db.models.load_balancer.update({ flavor_id: NIL_UUID }, { where: { flavor_id: id, provisioning_status: 'DELETED' }, transaction: t });
    await db.models.flavor.destroy({ where: { id }, transaction: t });
  });
  ctx.status = 204;
}

// ---- profiles (flavor profiles here, availability zone profiles in availability-zones.ts) ----

export interface ProfileKind {
  spec: ResourceSpec;
  /** Column holding the provider metadata (a JSON object encoded as a string). */
  dataField: 'flavor_data' | 'availability_zone_data';
  /** Provider check that validates the parsed metadata. */
  check: 'flavorData' | 'availabilityZoneData';
  /** Objects that use a profile, and their column naming it. */
  usedBy: { table: TableName; column: string };
  /** Octavia spells the resource differently depending on where the message comes from. */
  names: { lookup: string; explicit: string };
}

export function profileViews(dataField: string) {
  return async (_db: Services['db'], rows: Row[]): Promise<ApiObject[]> =>
    rows.map((r) => ({ id: r.id, name: r.name ?? '', provider_name: r.provider_name, [dataField]: r[dataField] ?? null }));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `<data> is not a valid option for <field>` unless the text is JSON. */
function parseData(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw errors.invalidOption(text, field);
  }
}

/** The provider must be enabled (400) and have a driver (501); its driver validates the data (501). */
export function validateProviderData(services: Services, provider: string, data: unknown, check: ProfileKind['check']): void {
  if (!services.providers.isEnabled(provider)) throw errors.providerNotEnabled(provider);
  const driver = services.providers.get(provider);
  if (!driver) throw errors.providerNotFound(provider);
  const validate = driver.checks[check];
  if (!validate) return;
  checkWithProvider(driver, provider, () => {
    if (!isPlainObject(data)) throw new UnsupportedOptionError(`${typeof data === 'string' ? `'${data}'` : pyStr(data)} is not of type 'object'`);
    validate(data);
  });
}

function profileSchemas(kind: ProfileKind): { post: Schema; put: Schema } {
  const post: Schema = {
    name: { type: string({ max: 255 }), mandatory: true },
    provider_name: { type: string({ max: 255 }), mandatory: true },
    [kind.dataField]: { type: string({ max: 4096 }), mandatory: true },
  };
  const put: Schema = Object.fromEntries(Object.entries(post).map(([k, f]) => [k, { type: f.type }]));
  return { post, put };
}

async function findProfile(services: Services, kind: ProfileKind, id: string, t?: Transaction): Promise<Row | null> {
  const { db } = services;
  if (id === NIL_UUID) return null;
  const run = async () => (await db.models[kind.spec.table].findByPk(id, { raw: true, transaction: t, lock: t ? db.lock : undefined })) as Row | null;
  return t ? run() : db.read(run);
}

async function profileInUse(services: Services, kind: ProfileKind, id: string, t: Transaction): Promise<boolean> {
  return (await services.db.models[kind.usedBy.table].count({ where: { [kind.usedBy.column]: id }, transaction: t })) > 0;
}

export function profileRoutes(router: Router<any, any>, path: string, kind: ProfileKind): void {
  const { spec, dataField } = kind;
  const wrapper = spec.singular;
  const argName = `${wrapper}_`;
  const schemas = profileSchemas(kind);
  const policy = spec.policy;

  router.get(path, (ctx) => listResource(ctx as Ctx, spec));

  router.get(`${path}/:id`, async (ctx) => {
    const c = ctx as Ctx;
    enforce(c, policy, 'get_one', callerProject(c));
    const id = c.params.id!;
    if (id === NIL_UUID) throw errors.notFound(kind.names.explicit, id);
    const row = await findProfile(c.state.services, kind, id);
    if (!row) throw errors.notFound(kind.names.lookup, id);
    await showResource(c, spec, row, callerProject(c));
  });

  router.post(path, async (ctx) => {
    const c = ctx as Ctx;
    const { services } = c.state;
    const body = parseRequest(c.state.body, wrapper, schemas.post, argName);
    enforce(c, policy, 'post', callerProject(c));
    const data = parseData(body[dataField] as string, dataField);
    validateProviderData(services, body.provider_name as string, data, kind.check);
    const row: Row = { id: newId(), name: body.name, provider_name: body.provider_name, [dataField]: body[dataField] };
    await services.db.tx(async (t) => {
      await services.db.models[spec.table].create(row, { transaction: t });
    });
    c.status = 201;
    c.body = { [wrapper]: (await spec.view(services.db, [row]))[0] };
  });

  router.put(`${path}/:id`, async (ctx) => {
    const c = ctx as Ctx;
    const { services } = c.state;
    const { db } = services;
    const id = c.params.id!;
    const body = parseRequest(c.state.body, wrapper, schemas.put, argName);
    enforce(c, policy, 'put', callerProject(c));
    for (const f of ['name', 'provider_name', dataField]) if (f in body && body[f] === null) throw errors.invalidOption(null, f);
    const row = await db.tx(async (t) => {
      const found = await findProfile(services, kind, id, t); // locks the row against concurrent users
      const changesDriverInput = dataField in body || 'provider_name' in body;
      if (changesDriverInput && (await profileInUse(services, kind, id, t))) throw errors.inUse(kind.names.explicit, id);
      if (id === NIL_UUID) throw errors.notFound(kind.names.explicit, id);
      if (!found) throw errors.notFound(kind.names.lookup, id);
      if (changesDriverInput) {
        // Octavia validates only when the data changes; a new provider is also checked against the
        // stored data here, so a profile never names a provider that is not enabled.
        const text = (body[dataField] ?? found[dataField]) as string | null;
        const data = dataField in body ? parseData(text as string, dataField) : text ? parseData(text, dataField) : {};
        validateProviderData(services, (body.provider_name ?? found.provider_name) as string, data, kind.check);
      }
      if (Object.keys(body).length > 0) await db.models[spec.table].update(body, { where: { id }, transaction: t });
      return { ...found, ...body };
    });
    c.body = { [wrapper]: (await spec.view(db, [row]))[0] };
  });

  router.delete(`${path}/:id`, async (ctx) => {
    const c = ctx as Ctx;
    const { services } = c.state;
    const id = c.params.id!;
    enforce(c, policy, 'delete', callerProject(c));
    if (id === NIL_UUID) throw errors.notFound(kind.names.explicit, id);
    await services.db.tx(async (t) => {
      const found = await findProfile(services, kind, id, t); // locks the row against concurrent users
      if (await profileInUse(services, kind, id, t)) throw errors.inUse(kind.names.explicit, id);
      if (!found) throw errors.notFound(kind.names.explicit, id);
      await services.db.models[spec.table].destroy({ where: { id }, transaction: t });
    });
    c.status = 204;
  });
}

export const flavorProfileSpec: ResourceSpec = {
  table: 'flavor_profile',
  display: 'Flavor Profile',
  singular: 'flavorprofile',
  plural: 'flavorprofiles',
  linksKey: 'flavorprofile_links',
  policy: 'flavor-profile',
  idColumn: 'id',
  hasTags: false,
  hasCreatedAt: false,
  projectScoped: false,
  hidden: { id: { [Op.ne]: NIL_UUID } },
  view: profileViews('flavor_data'),
  columns: { id: col('id'), name: col('name'), provider_name: col('provider_name'), flavor_data: col('flavor_data') },
};

const flavorProfileKind: ProfileKind = {
  spec: flavorProfileSpec,
  dataField: 'flavor_data',
  check: 'flavorData',
  usedBy: { table: 'flavor', column: 'flavor_profile_id' },
  names: { lookup: 'Flavor Profile', explicit: 'Flavor profile' },
};

export function routes(router: Router<any, any>): void {
  router.get('/flavors', (ctx) => listResource(ctx as Ctx, flavorSpec));
  router.post('/flavors', (ctx) => createFlavor(ctx as Ctx));
  router.get('/flavors/:id', (ctx) => showFlavor(ctx as Ctx));
  router.put('/flavors/:id', (ctx) => updateFlavor(ctx as Ctx));
  router.delete('/flavors/:id', (ctx) => deleteFlavor(ctx as Ctx));
  profileRoutes(router, '/flavorprofiles', flavorProfileKind);
}
