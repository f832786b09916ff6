// Request bodies: a wrapper key holding an object whose attributes are checked against a schema.
// Parsed objects hold only the attributes the client sent (null when sent as null), so PUT can
// tell "absent" from "reset".
import { errors } from '../errors.ts';
import type { FieldType } from './types.ts';

export interface Field<T = unknown> {
  type: FieldType<T>;
  mandatory?: boolean;
}
export type Schema = Record<string, Field>;
export type Body = Record<string, unknown>;

export function parseObject(schema: Schema, value: unknown, argPath: string): Body {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw errors.invalidInput(argPath.split('.').pop()!, value, 'Value should be an object');
  }
  const input = value as Record<string, unknown>;
  const unknown = Object.keys(input).filter((k) => !(k in schema));
  if (unknown.length > 0) throw errors.unknownAttributes(argPath, unknown.sort());
  const out: Body = {};
  for (const [name, field] of Object.entries(schema)) {
    if (!(name in input) || input[name] === undefined) {
      if (field.mandatory) throw errors.mandatory(name);
      continue;
    }
    const v = input[name];
    if (v === null) {
      if (field.mandatory) throw errors.mandatory(name);
      out[name] = null;
    } else {
      out[name] = field.type.parse(v, name);
    }
  }
  return out;
}

export function object(schema: Schema, argPath: string): FieldType<Body> {
  return { parse: (value) => parseObject(schema, value, argPath) };
}

/** Parses {"<wrapper>": {...}}; argName is the handler argument named in unknown-attribute messages. */
export function parseRequest(body: unknown, wrapper: string, schema: Schema, argName: string): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw errors.mandatory(wrapper);
  const unknown = Object.keys(body).filter((k) => k !== wrapper);
  if (unknown.length > 0) throw errors.unknownAttributes(argName, unknown.sort());
  const inner = (body as Record<string, unknown>)[wrapper];
  if (inner === undefined || inner === null) throw errors.mandatory(wrapper);
  return parseObject(schema, inner, `${argName}.${wrapper}`);
}

export const has = (body: Body, key: string) => key in body;
