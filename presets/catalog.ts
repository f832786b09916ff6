// Loads the preset files: the built-in ones next to this file, then the operator's directory
// (config presets.directory), whose files replace built-in presets of the same name. Every file is
// validated against presets/schema.ts; a bad file stops the load with its path and the reasons.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PresetSchema, type Preset } from './schema.ts';

export const BUILT_IN_PRESETS_DIR = dirname(fileURLToPath(import.meta.url));
const EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface CatalogEntry {
  preset: Preset;
  file: string;
  builtIn: boolean;
}

export class PresetFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`preset file ${file}: ${reason}`);
    this.name = 'PresetFileError';
  }
}

/** Parses and validates one preset file; its name must match the file name. */
export function loadPresetFile(file: string): Preset {
  let data: unknown;
  try {
    data = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PresetFileError(file, (e as Error).message);
  }
  const result = PresetSchema.safeParse(data);
  if (!result.success) {
    throw new PresetFileError(file, result.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; '));
  }
  const stem = basename(file, extname(file));
  if (result.data.name !== stem) throw new PresetFileError(file, `name ${result.data.name} differs from the file name ${stem}`);
  return result.data;
}

function presetFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => EXTENSIONS.includes(extname(f)))
    .sort()
    .map((f) => join(dir, f));
}

/** Every preset by name: built-in, then the operator's directory (null: none). */
export function loadCatalog(operatorDir: string | null, builtInDir = BUILT_IN_PRESETS_DIR): Map<string, CatalogEntry> {
  const catalog = new Map<string, CatalogEntry>();
  for (const file of presetFiles(builtInDir)) {
    const preset = loadPresetFile(file);
    if (catalog.has(preset.name)) throw new PresetFileError(file, `preset ${preset.name} is defined twice`);
    catalog.set(preset.name, { preset, file, builtIn: true });
  }
  if (operatorDir) {
    const seen = new Set<string>();
    for (const file of presetFiles(operatorDir)) {
      const preset = loadPresetFile(file);
      if (seen.has(preset.name)) throw new PresetFileError(file, `preset ${preset.name} is defined twice in ${operatorDir}`);
      seen.add(preset.name);
      catalog.set(preset.name, { preset, file, builtIn: false });
    }
  }
  return catalog;
}
