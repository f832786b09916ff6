// Attribute types of the Octavia API with WSME's coercions and messages: integers accept numeric
// strings, booleans accept the oslo strings, every failure names the field.
import { isIP } from 'node:net';
import { parseCidr } from '../../common/ip-address.ts';
import { errors } from '../errors.ts';

export interface FieldType<T> {
  /** Converts a non-null JSON value or throws a 400 naming the field. */
  parse(value: unknown, field: string): T;
}

const fail = (field: string, value: unknown, reason: string): never => {
  throw errors.invalidInput(field, value, reason);
};

export const UUID_RE = /^(urn:uuid:)?\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

export const uuid: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || !UUID_RE.test(value)) return fail(field, value, 'Value should be UUID format');
    return value;
  },
};

export function string(opts: { min?: number; max?: number; pattern?: RegExp } = {}): FieldType<string> {
  return {
    parse(value, field) {
      if (typeof value !== 'string') return fail(field, value, 'Value should be string');
      const length = [...value].length;
      if (opts.min !== undefined && length < opts.min) fail(field, value, `Value should have a minimum character requirement of ${opts.min}`);
      if (opts.max !== undefined && length > opts.max) fail(field, value, `Value should have a maximum character requirement of ${opts.max}`);
      if (opts.pattern && !opts.pattern.test(value)) fail(field, value, `Value should match the pattern ${opts.pattern.source}`);
      return value;
    },
  };
}

export function integer(opts: { min?: number; max?: number } = {}): FieldType<number> {
  return {
    parse(value, field) {
      let n: number;
      if (typeof value === 'number' && Number.isFinite(value)) n = Math.trunc(value);
      else if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) n = Number.parseInt(value, 10);
      else return fail(field, value, 'Value should be an integer');
      if (!Number.isSafeInteger(n)) fail(field, value, 'Value should be an integer');
      if (opts.min !== undefined && n < opts.min) fail(field, value, `Value should be greater or equal to ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) fail(field, value, `Value should be lower or equal to ${opts.max}`);
      return n;
    },
  };
}

const TRUE_STRINGS = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const FALSE_STRINGS = new Set(['false', 'f', 'no', 'n', 'off', '0']);

export function parseBoolString(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (TRUE_STRINGS.has(v)) return true;
  if (FALSE_STRINGS.has(v)) return false;
  return undefined;
}

export const boolean: FieldType<boolean> = {
  parse(value, field) {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number' && Number.isInteger(value)) return value !== 0;
    if (typeof value === 'string') {
      const b = parseBoolString(value);
      if (b !== undefined) return b;
    }
    return fail(field, value, `Value not an unambiguous boolean: ${String(value)}`);
  },
};

export function oneOf<T extends string | number>(values: readonly T[], base: FieldType<T>): FieldType<T> {
  return {
    parse(value, field) {
      const v = base.parse(value, field);
      if (!values.includes(v)) fail(field, value, `Value should be one of: ${values.join(', ')}`);
      return v;
    },
  };
}

export const enumOf = <T extends string>(values: readonly T[]) => oneOf(values, string() as FieldType<T>);

export const number: FieldType<number> = {
  parse(value, field) {
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
    return fail(field, value, 'Value should be a number');
  },
};

export const ipAddress: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || isIP(value) === 0) return fail(field, value, 'Value should be IPv4 or IPv6 format');
    return value;
  },
};

export const cidr: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || parseCidr(value) === undefined) return fail(field, value, 'Value should be IPv4 or IPv6 CIDR format');
    return value;
  },
};

export const url: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || !isValidUrl(value)) return fail(field, value, 'Value must be a valid URL string');
    return value;
  },
};

/** Octavia's AlpnProtocolType: one of the ALPN protocol ids it supports. */
export const alpnProtocol: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || !['h2', 'http/1.1', 'http/1.0'].includes(value)) return fail(field, value, 'Value should be a valid ALPN protocol ID');
    return value;
  },
};

export function list<T>(item: FieldType<T>): FieldType<T[]> {
  return {
    parse(value, field) {
      if (!Array.isArray(value)) return fail(field, value, `Value not a valid list: ${String(value)}`);
      return value.map((v) => {
        if (v === null) fail(field, value, 'Value should not be None');
        return item.parse(v, field);
      });
    },
  };
}

export function dict<T>(valueType: FieldType<T>): FieldType<Record<string, T>> {
  return {
    parse(value, field) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(field, value, 'Value should be a dict');
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(value)) out[k] = valueType.parse(v, field);
      return out;
    },
  };
}

export function isValidUrl(text: string): boolean {
  if (/[\x00-\x20\x7f-\x9f]/.test(text)) return false;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return false;
  }
  return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.hostname !== '';
}

/** An absolute URL path as Octavia's URLPathType accepts it: starts with /, no scheme or host. */
export const urlPath: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string' || !isValidUrlPath(value)) return fail(field, value, 'Value must be a valid URL Path string');
    return value;
  },
};

export function isValidUrlPath(text: string): boolean {
  if (!text.startsWith('/') || text.startsWith('//') || /[\s\x00-\x1f\x7f]/.test(text)) return false;
  try {
    const parsed = new URL(text, 'http://base.invalid');
    return parsed.host === 'base.invalid';
  } catch {
    return false;
  }
}

export const DOMAIN_NAME_RE = /^(?=^.{1,254}$)(^(?:(?!\d+\.|-)[a-zA-Z0-9_\-]{1,63}(?<!-)\.?)+(?:[a-zA-Z]{2,})$)/;
