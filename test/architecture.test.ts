/** The layout's rules, checked on the import graph (runtime imports; `import type` is erased). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const RUNTIME_IMPORT = /^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

function imports(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  return [...source.matchAll(RUNTIME_IMPORT)].map((match) => match[1]);
}

function resolveLocal(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = path.resolve(path.dirname(from), specifier).replace(/\.js$/, '.ts');
  return fs.existsSync(target) ? target : null;
}

/** Every project file reachable from `entry` through runtime imports. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [path.join(root, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of imports(file)) {
      const target = resolveLocal(file, specifier);
      if (target) stack.push(target);
    }
  }
  return seen;
}

const rel = (file: string) => path.relative(root, file);

describe('architecture', () => {
  it('the API process never loads the vision layer or onnxruntime', () => {
    const files = [...reachable('src/api/main.ts')];
    expect(files.map(rel).filter((file) => file.startsWith('src/vision/'))).toEqual([]);
    expect(files.filter((file) => imports(file).includes('onnxruntime-node')).map(rel)).toEqual([]);
  });

  it('stages never import each other: they meet in the queue contract', () => {
    const stages = ['vision', 'match', 'aggregate'];
    for (const stage of stages) {
      const others = [...reachable(`workers/${stage}.ts`)].map(rel).filter((file) => stages.some((s) => s !== stage && file === `workers/${s}.ts`));
      expect(others, `workers/${stage}.ts`).toEqual([]);
    }
  });

  it('the vision layer knows nothing of HTTP, queues or SQL', () => {
    const forbidden = ['koa', '@koa/router', 'bullmq', 'ioredis', 'knex', 'objection', 'mysql2', 'chromadb'];
    const visionFiles = fs
      .readdirSync(path.join(root, 'src/vision'), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts'))
      .map((name) => path.join(root, 'src/vision', name));
    for (const file of visionFiles) {
      for (const reached of reachable(rel(file))) {
        expect(imports(reached).filter((specifier) => forbidden.includes(specifier)), rel(reached)).toEqual([]);
      }
    }
  });
});
