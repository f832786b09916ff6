// /v2/lbaas/availabilityzones (keyed by name; readable by every project, managed by admins) and
// /v2/lbaas/availabilityzoneprofiles (admin only; same handlers as flavor profiles).
import type Router from '@koa/router';
import { Op, UniqueConstraintError, type Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { col, listPage, listQuery, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import type { ApiObject } from '../views.ts';
import { NIL_UUID, profileRoutes, profileViews, type ProfileKind } from './flavors.ts';

// ---- availability zones ---------------------------------------------------------------------------

const callerProject = (ctx: Ctx) => ctx.state.auth.projectId;

async function zoneViews(_db: Services['db'], rows: Row[]): Promise<ApiObject[]> {
  return rows.map((r) => ({
    name: r.name,
    description: r.description ?? '',
    enabled: Boolean(r.enabled),
    availability_zone_profile_id: r.availability_zone_profile_id,
  }));
}

export const availabilityZoneSpec: ResourceSpec = {
  table: 'availability_zone',
  display: 'Availability Zone',
  singular: 'availability_zone',
  plural: 'availability_zones',
  linksKey: 'availability_zones_links',
  policy: 'availability-zone',
  idColumn: 'name',
  hasTags: false,
  hasCreatedAt: false,
  projectScoped: false,
  hidden: { name: { [Op.ne]: NIL_UUID } },
  view: zoneViews,
  columns: {
    name: col('name'),
    description: col('description'),
    enabled: col('enabled', 'bool'),
    availability_zone_profile_id: col('availability_zone_profile_id'),
  },
};

const zonePost: Schema = {
  name: { type: string({ max: 255 }), mandatory: true },
  description: { type: string({ max: 255 }) },
  enabled: { type: boolean },
  availability_zone_profile_id: { type: uuid, mandatory: true },
};

const zonePut: Schema = {
  description: { type: string({ max: 255 }) },
  enabled: { type: boolean },
};

/** `enabled` is NOT NULL: a null is refused (Octavia lets it reach the database: a 500). */
function refuseNullEnabled(body: Body): void {
  if ('enabled' in body && body.enabled === null) throw errors.invalidOption(null, 'enabled');
}

async function findZone(services: Services, name: string, t?: Transaction): Promise<Row | null> {
  const { db } = services;
  const run = async () => (await db.models.availability_zone.findByPk(name, { raw: true, transaction: t, lock: t ? db.lock : undefined })) as Row | null;
  return t ? run() : db.read(run);
}

async function listZones(ctx: Ctx): Promise<void> {
  enforce(ctx, 'availability-zone', 'get_all', callerProject(ctx));
  const q = listQuery(ctx, availabilityZoneSpec);
  if (q.projectId !== undefined) throw errors.invalidFilter();
  await listPage(ctx, availabilityZoneSpec, q, []);
}

async function showZone(ctx: Ctx): Promise<void> {
  enforce(ctx, 'availability-zone', 'get_one', callerProject(ctx));
  const name = ctx.params.name!;
  if (name === NIL_UUID) throw errors.notFound('Availability Zone', name);
  const row = await findZone(ctx.state.services, name);
  if (!row) throw errors.notFound('Availability Zone', name);
  await showResource(ctx, availabilityZoneSpec, row, callerProject(ctx));
}

async function createZone(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const body = parseRequest(ctx.state.body, 'availability_zone', zonePost, 'availability_zone_');
  enforce(ctx, 'availability-zone', 'post', callerProject(ctx));
  refuseNullEnabled(body);
  const name = body.name as string;
  const profileId = body.availability_zone_profile_id as string;
  const row: Row = { name, description: body.description ?? null, enabled: body.enabled ?? true, availability_zone_profile_id: profileId };
  try {
    await db.tx(async (t) => {
      // The nil UUID names the zone row Octavia reserves; it always exists and is never shown.
      if (name === NIL_UUID || (await findZone(services, name, t))) throw errors.recordExists('availability zone', name);
      // Locked, so the profile cannot be deleted before this zone is committed.
      const profile =
        profileId === NIL_UUID ? null : await db.models.availability_zone_profile.findByPk(profileId, { raw: true, transaction: t, lock: db.lock });
      if (!profile) throw errors.notFound('Availability Zone Profile', profileId);
      await db.models.availability_zone.create(row, { transaction: t });
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw errors.recordExists('availability zone', name);
    throw err;
  }
  ctx.status = 201;
  ctx.body = { availability_zone: (await zoneViews(db, [row]))[0] };
}

async function updateZone(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const name = ctx.params.name!;
  const body = parseRequest(ctx.state.body, 'availability_zone', zonePut, 'availability_zone_');
  enforce(ctx, 'availability-zone', 'put', callerProject(ctx));
  if (name === NIL_UUID) throw errors.notFound('Availability Zone', name);
  refuseNullEnabled(body);
  const row = await db.tx(async (t) => {
    const found = await findZone(services, name, t);
    if (!found) throw errors.notFound('Availability Zone', name);
    if (Object.keys(body).length > 0) await db.models.availability_zone.update(body, { where: { name }, transaction: t });
    return { ...found, ...body };
  });
  ctx.body = { availability_zone: (await zoneViews(db, [row]))[0] };
}

async function deleteZone(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const name = ctx.params.name!;
  enforce(ctx, 'availability-zone', 'delete', callerProject(ctx));
  if (name === NIL_UUID) throw errors.notFound('Availability Zone', name);
  await db.tx(async (t) => {
    if (!(await findZone(services, name, t))) throw errors.notFound('Availability Zone', name);
    const users = await db.models.load_balancer.count({
      where: { availability_zone: name, provisioning_status: { [Op.ne]: 'DELETED' } },
      transaction: t,
    });
    if (users > 0) throw errors.inUse('Availability Zone', name);
    // Deleted load balancers keep their rows until purged; like Octavia, point them at the reserved nil-UUID row.
    await db.models.load_balancer.update(
      { availability_zone: NIL_UUID },
      { where: { availability_zone: name, provisioning_status: 'DELETED' }, transaction: t },
    );
    await db.models.availability_zone.destroy({ where: { name }, transaction: t });
  });
  ctx.status = 204;
}

// ---- availability zone profiles ---------------------------------------------------------------------

export const availabilityZoneProfileSpec: ResourceSpec = {
  table: 'availability_zone_profile',
  display: 'Availability Zone Profile',
  singular: 'availability_zone_profile',
  plural: 'availability_zone_profiles',
  linksKey: 'availability_zone_profile_links',
  policy: 'availability-zone-profile',
  idColumn: 'id',
  hasTags: false,
  hasCreatedAt: false,
  projectScoped: false,
  hidden: { id: { [Op.ne]: NIL_UUID } },
  view: profileViews('availability_zone_data'),
  columns: {
    id: col('id'),
    name: col('name'),
    provider_name: col('provider_name'),
    availability_zone_data: col('availability_zone_data'),
  },
};

const zoneProfileKind: ProfileKind = {
  spec: availabilityZoneProfileSpec,
  dataField: 'availability_zone_data',
  check: 'availabilityZoneData',
  usedBy: { table: 'availability_zone', column: 'availability_zone_profile_id' },
  names: { lookup: 'Availability Zone Profile', explicit: 'Availability Zone Profile' },
};

export function routes(router: Router<any, any>): void {
  router.get('/availabilityzones', (ctx) => listZones(ctx as Ctx));
  router.post('/availabilityzones', (ctx) => createZone(ctx as Ctx));
  router.get('/availabilityzones/:name', (ctx) => showZone(ctx as Ctx));
  router.put('/availabilityzones/:name', (ctx) => updateZone(ctx as Ctx));
  router.delete('/availabilityzones/:name', (ctx) => deleteZone(ctx as Ctx));
  profileRoutes(router, '/availabilityzoneprofiles', zoneProfileKind);
}
