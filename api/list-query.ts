// GET collection parameters as Octavia reads them: exact-match filters on model attributes, tag
// filters, sort / sort_key / sort_dir, keyset pagination with limit / marker / page_reverse,
// and the fields projection (also on single GETs).
import { Op, Sequelize, type WhereOptions } from 'sequelize';
import type { Row } from '../common/db/database.ts';
import { errors } from './errors.ts';
import { parseBoolString } from './schema/types.ts';

export type ColumnKind = 'string' | 'int' | 'bool' | 'float';

export interface CollectionSpec {
  /** API attribute name -> column and kind; only these may be filtered and sorted on. */
  columns: Record<string, { column: string; kind: ColumnKind }>;
  hasTags: boolean;
  hasCreatedAt: boolean;
  idColumn: string;
}

export type QueryValues = Record<string, string | string[] | undefined>;

export interface ListQuery {
  where: Record<string, unknown>;
  tagWhere: ReturnType<typeof Sequelize.literal>[];
  sort: Array<{ column: string; api: string; dir: 'asc' | 'desc' }>;
  limit: number | null;
  marker: string | null;
  pageReverse: boolean;
  fields: string[] | null;
  /** Filters to carry into page links. */
  carried: Array<[string, string]>;
  projectId: string | undefined;
}

const RESERVED = new Set(['limit', 'marker', 'page_reverse', 'sort', 'sort_key', 'sort_dir', 'fields', 'project_id', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function parseFields(query: QueryValues): string[] | null {
  const out: string[] = [];
  for (const [k, v] of Object.entries(query)) if (k === 'fields' || /^fields\[\d*\]$/.test(k)) out.push(...asList(v));
  return out.length > 0 ? out : null;
}

/** Quotes a string as an SQL literal of the database's dialect (sequelize.escape). */
export type SqlQuote = (value: string) => string;

/** Standard SQL quoting plus doubled backslashes (MySQL's default string syntax); pass the dialect's own. */
const defaultQuote: SqlQuote = (t) => `'${t.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export function parseListQuery(query: QueryValues, spec: CollectionSpec, maxLimit: number, extraReserved: string[] = [], quote: SqlQuote = defaultQuote): ListQuery {
  const where: Record<string, unknown> = {};
  const carried: Array<[string, string]> = [];
  for (const [key, raw] of Object.entries(query)) {
    if (RESERVED.has(key) || extraReserved.includes(key) || /^fields\[\d*\]$/.test(key)) continue;
    const col = spec.columns[key];
    const values = asList(raw);
    if (!col || values.length !== 1) throw errors.invalidFilter();
    where[col.column] = filterValue(values[0]!, col.kind);
    carried.push([key, values[0]!]);
  }
  const tagWhere = spec.hasTags ? tagFilters(query, spec.idColumn, quote) : [];
  for (const k of ['tags', 'tags-any', 'not-tags', 'not-tags-any']) for (const v of asList(query[k])) carried.push([k, v]);
  if (!spec.hasTags && ['tags', 'tags-any', 'not-tags', 'not-tags-any'].some((k) => query[k] !== undefined)) throw errors.invalidFilter();

  const sort = parseSort(query, spec);
  const limitText = asList(query.limit)[0];
  let limit: number | null = maxLimit;
  if (limitText !== undefined) {
    if (limitText === 'infinite') limit = null;
    else if (!/^-?\d+$/.test(limitText)) throw errors.invalidLimit(limitText);
    else {
      const n = Number.parseInt(limitText, 10);
      limit = n < 1 ? null : Math.min(n, maxLimit);
    }
  }
  const projectIds = asList(query.project_id);
  return {
    where,
    tagWhere,
    sort,
    limit,
    marker: asList(query.marker)[0] ?? null,
    pageReverse: asList(query.page_reverse)[0] === 'True',
    fields: parseFields(query),
    carried,
    projectId: projectIds[0],
  };
}

function filterValue(value: string, kind: ColumnKind): unknown {
  if (kind === 'bool') {
    const b = parseBoolString(value);
    if (b === undefined) throw errors.invalidFilter();
    return b;
  }
  if (kind === 'int') {
    if (!/^-?\d+$/.test(value)) return { [Op.is]: null, [Op.not]: null }; // matches nothing
    return Number.parseInt(value, 10);
  }
  if (kind === 'float') return Number(value);
  return value;
}

function parseSort(query: QueryValues, spec: CollectionSpec): ListQuery['sort'] {
  const items: Array<{ api: string; dir: string }> = [];
  const sortParam = asList(query.sort).join(',');
  if (sortParam) {
    for (const part of sortParam.split(',')) {
      const [api, dir] = part.trim().split(':');
      items.push({ api: api!.trim(), dir: (dir ?? 'asc').trim().toLowerCase() });
    }
  } else {
    const keys = asList(query.sort_key).join(',');
    if (keys) {
      const dirs = asList(query.sort_dir).join(',').split(',').filter(Boolean);
      keys.split(',').forEach((api, i) => items.push({ api: api.trim(), dir: dirs[i]?.trim().toLowerCase() ?? 'asc' }));
    }
  }
  const sort: ListQuery['sort'] = [];
  for (const { api, dir } of items) {
    const col = spec.columns[api];
    if (!col) throw errors.invalidSortKey(api);
    if (dir !== 'asc' && dir !== 'desc') throw errors.invalidSortDir(dir);
    sort.push({ column: col.column, api, dir });
  }
  if (spec.hasCreatedAt && !sort.some((s) => s.column === 'created_at')) sort.push({ column: 'created_at', api: 'created_at', dir: 'asc' });
  if (!sort.some((s) => s.column === spec.idColumn)) sort.push({ column: spec.idColumn, api: 'id', dir: 'asc' });
  return sort;
}

function tagFilters(query: QueryValues, idColumn: string, quote: SqlQuote): ReturnType<typeof Sequelize.literal>[] {
  const out: ReturnType<typeof Sequelize.literal>[] = [];
  const split = (k: string) => asList(query[k]).flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
  const esc = (tags: string[]) => tags.map(quote).join(',');
  const all = (tags: string[]) =>
    `(SELECT resource_id FROM tag WHERE tag IN (${esc(tags)}) GROUP BY resource_id HAVING COUNT(DISTINCT tag) = ${new Set(tags).size})`;
  const any = (tags: string[]) => `(SELECT resource_id FROM tag WHERE tag IN (${esc(tags)}))`;
  const col = idColumn;
  const tags = split('tags');
  if (tags.length) out.push(Sequelize.literal(`${col} IN ${all(tags)}`));
  const tagsAny = split('tags-any');
  if (tagsAny.length) out.push(Sequelize.literal(`${col} IN ${any(tagsAny)}`));
  const notTags = split('not-tags');
  if (notTags.length) out.push(Sequelize.literal(`${col} NOT IN ${all(notTags)}`));
  const notAny = split('not-tags-any');
  if (notAny.length) out.push(Sequelize.literal(`${col} NOT IN ${any(notAny)}`));
  return out;
}

/** The keyset condition selecting rows after (or, reversed, before) the marker row. */
export function markerCondition(sort: ListQuery['sort'], marker: Row, reverse: boolean): WhereOptions {
  const ors: WhereOptions[] = [];
  sort.forEach((s, i) => {
    const and: Record<string, unknown> = {};
    for (const prev of sort.slice(0, i)) and[prev.column] = marker[prev.column];
    const ascending = (s.dir === 'asc') !== reverse;
    and[s.column] = { [ascending ? Op.gt : Op.lt]: marker[s.column] };
    ors.push(and);
  });
  return { [Op.or]: ors };
}

export function pageLinks(baseUrl: string, q: ListQuery, page: Array<Record<string, unknown>>, key = 'id'): Array<{ href: string; rel: string }> {
  const links: Array<{ href: string; rel: string }> = [];
  if (q.limit === null || page.length === 0) return links;
  const params = (marker: string, reverse: boolean) => {
    const p = new URLSearchParams();
    p.set('limit', String(q.limit));
    const userSort = q.sort.filter((s, i) => !(i >= q.sort.length - 2 && (s.api === 'created_at' || s.api === 'id') && s.dir === 'asc'));
    if (userSort.length) p.set('sort', userSort.map((s) => `${s.api}:${s.dir}`).join(','));
    for (const [k, v] of q.carried) p.append(k, v);
    p.set('marker', marker);
    if (reverse) p.set('page_reverse', 'True');
    return p.toString();
  };
  if (q.marker) links.push({ href: `${baseUrl}?${params(String(page[0]![key]), true)}`, rel: 'previous' });
  if (page.length >= q.limit) links.push({ href: `${baseUrl}?${params(String(page[page.length - 1]![key]), false)}`, rel: 'next' });
  return links;
}

export function project<T extends Record<string, unknown>>(obj: T, fields: string[] | null): Partial<T> {
  if (!fields) return obj;
  const out: Record<string, unknown> = {};
  for (const f of fields) if (f in obj) out[f] = obj[f];
  return out as Partial<T>;
}
