// GET on collections and single objects, shared by every resource.
import { DataTypes, Op, type Model, type ModelStatic, type Transaction, type WhereOptions } from 'sequelize';
import type { Row } from '../common/db/database.ts';
import type { TableName } from '../common/db/tables.ts';
import { listScope, enforce } from './access.ts';
import { errors } from './errors.ts';
import { markerCondition, pageLinks, parseFields, parseListQuery, project, type CollectionSpec, type ColumnKind, type ListQuery } from './list-query.ts';
import type { Ctx, Services } from './services.ts';
import type { ApiObject } from './views.ts';

export interface ResourceSpec extends CollectionSpec {
  table: TableName;
  /** Name used in messages: `<display> <id> not found.` */
  display: string;
  singular: string;
  plural: string;
  linksKey: string;
  /** Policy object name, e.g. `loadbalancer`. */
  policy: string;
  view: (db: Services['db'], rows: Row[], t?: Transaction) => Promise<ApiObject[]>;
  /** Rows never shown (e.g. load balancers marked DELETED). */
  hidden?: WhereOptions;
  /** Whether lists are scoped by project (false: flavors, AZs, amphorae). */
  projectScoped: boolean;
}

export const col = (column: string, kind: ColumnKind = 'string') => ({ column, kind });

/** Columns every status-carrying object can be filtered and sorted on. */
export const baseColumns = {
  id: col('id'),
  project_id: col('project_id'),
  name: col('name'),
  provisioning_status: col('provisioning_status'),
  operating_status: col('operating_status'),
  admin_state_up: col('admin_state_up', 'bool'),
  created_at: col('created_at'),
  updated_at: col('updated_at'),
};

export async function findVisible(services: Services, spec: ResourceSpec, id: string, t?: Transaction): Promise<Row | undefined> {
  const { db } = services;
  const where: WhereOptions = spec.hidden ? { [Op.and]: [{ [spec.idColumn]: id }, spec.hidden] } : { [spec.idColumn]: id };
  const run = async () => ((await db.models[spec.table].findOne({ where, raw: true, transaction: t, lock: t ? db.lock : undefined })) as Row | null) ?? undefined;
  return t ? run() : db.read(run);
}

export async function findOr404(services: Services, spec: ResourceSpec, id: string, t?: Transaction): Promise<Row> {
  const row = await findVisible(services, spec, id, t);
  if (!row) throw errors.notFound(spec.display, id);
  return row;
}

export interface ListOptions {
  /** Extra conditions (a parent from the path). */
  where?: Record<string, unknown>;
  /** Policy check instead of the project scope (members, rules: the parent's project). */
  authorizeParentProject?: string | null;
  /** Query keys the handler consumes itself. */
  reserved?: string[];
}

/** Parses the list parameters of a request for `spec` (RBAC and project scoping are the caller's). */
export function listQuery(ctx: Ctx, spec: ResourceSpec, reserved: string[] = []): ListQuery {
  const { db, config } = ctx.state.services;
  return parseListQuery(ctx.query as Record<string, string | string[]>, spec, config.api.paginationMaxLimit, reserved, (v) => db.sequelize.escape(v));
}

/** Renders one page of `spec`'s rows matching `q` and `conditions` as `{<plural>, <links key>}`. */
export async function listPage(ctx: Ctx, spec: ResourceSpec, q: ListQuery, conditions: WhereOptions[]): Promise<void> {
  const { db } = ctx.state.services;
  const where: WhereOptions[] = [q.where, ...(q.tagWhere as WhereOptions[]), ...conditions];
  if (spec.hidden) where.push(spec.hidden);
  const rows = await db.read(async () => {
    if (q.marker) {
      const marker = (await db.models[spec.table].findOne({ where: { [spec.idColumn]: q.marker }, raw: true })) as Row | null;
      if (!marker) throw errors.invalidMarker(q.marker);
      where.push(markerCondition(q.sort, datesOf(db.models[spec.table], marker), q.pageReverse));
    }
    return (await db.models[spec.table].findAll({
      where: { [Op.and]: where },
      order: q.sort.map((s) => [s.column, s.dir.toUpperCase()]),
      limit: q.limit ?? undefined,
      raw: true,
    })) as Row[];
  });
  const objects = await db.read(() => spec.view(db, rows));
  ctx.body = {
    [spec.plural]: objects.map((o) => project(o, q.fields)),
    [spec.linksKey]: pageLinks(baseUrl(ctx), q, objects, spec.idColumn),
  };
}

/** SQLite hands dates back as text: compare them as dates, like the column values. */
function datesOf(model: ModelStatic<Model>, row: Row): Row {
  const out: Row = { ...row };
  for (const [name, attr] of Object.entries(model.getAttributes())) {
    if (attr.type instanceof DataTypes.DATE && typeof out[name] === 'string') out[name] = new Date(out[name].replace(' +00:00', 'Z').replace(' ', 'T'));
  }
  return out;
}

export async function listResource(ctx: Ctx, spec: ResourceSpec, opts: ListOptions = {}): Promise<void> {
  const q = listQuery(ctx, spec, opts.reserved);
  const conditions: WhereOptions[] = [];
  if (opts.where) conditions.push(opts.where);
  if (opts.authorizeParentProject !== undefined) {
    enforce(ctx, spec.policy, 'get_all', opts.authorizeParentProject);
  } else if (spec.projectScoped) {
    const scope = listScope(ctx, spec.policy, q.projectId);
    if (scope) conditions.push({ project_id: scope });
  } else {
    enforce(ctx, spec.policy, 'get_all', ctx.state.auth.projectId);
    if (q.projectId !== undefined) throw errors.invalidFilter();
  }
  await listPage(ctx, spec, q, conditions);
}

export async function showResource(ctx: Ctx, spec: ResourceSpec, row: Row, projectId: string | null = row.project_id ?? null): Promise<void> {
  enforce(ctx, spec.policy, 'get_one', projectId);
  const { db } = ctx.state.services;
  const [obj] = await db.read(() => spec.view(db, [row]));
  ctx.body = { [spec.singular]: project(obj!, parseFields(ctx.query as Record<string, string | string[]>)) };
}

/** Page links name the path the client asked for (before canonicalApiPath rewrote it). */
function baseUrl(ctx: Ctx): string {
  const path = ctx.originalUrl.split('?')[0]!.replace(/\.json$/, '');
  const configured = ctx.state.services.config.api.apiBaseUri;
  if (configured) return `${configured.replace(/\/$/, '')}${path}`;
  return `${ctx.protocol}://${ctx.host}${path}`;
}
