/** Model files on disk: presence and checksum, with one clear error naming the file and the fix. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FACEPLUGIN_PACKAGE, packFiles, resolvePack, type ModelFile, type PackOverrides } from './packs.js';
import type { PackName } from './types.js';

export class ModelFileError extends Error {
  constructor(
    readonly code: 'model_missing' | 'model_corrupt',
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'ModelFileError';
  }
}

const verified = new Map<string, string>();

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function howToFetch(model: ModelFile, modelsDir: string): string {
  return model.source === 'npm'
    ? `run \`npm run setup\` to fetch it from ${FACEPLUGIN_PACKAGE}`
    : `copy ${model.file} into ${modelsDir} (or run \`npm run setup -- --from <folder holding it>\`, which checks and copies it)`;
}

/** Throws ModelFileError for the first missing or corrupt file of `model`. Cached per path+size+mtime. */
export function verifyModelFile(modelsDir: string, model: ModelFile): string {
  const file = path.resolve(modelsDir, model.file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new ModelFileError('model_missing', file, `model file missing: ${file}; ${howToFetch(model, modelsDir)}`);
  }
  const key = `${stat.size}:${stat.mtimeMs}`;
  if (verified.get(file) === key) return file;
  if (stat.size !== model.bytes || sha256File(file) !== model.sha256) {
    throw new ModelFileError(
      'model_corrupt',
      file,
      `model file corrupt (size or sha256 differs from the manifest): ${file}; delete it and ${howToFetch(model, modelsDir)}`,
    );
  }
  verified.set(file, key);
  return file;
}

/** Checks every file the pack needs. One error naming the first bad file and the command that fetches it. */
export function verifyModels(modelsDir: string, pack: PackName, overrides?: PackOverrides): void {
  for (const model of packFiles(resolvePack(pack, overrides))) verifyModelFile(modelsDir, model);
}
