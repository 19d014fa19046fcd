import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { rewriteModel } from '../../src/vision/onnx/graph-rewrite.js';
import { type Field, floatField, intField, messageField, parseMessage, serializeMessage, stringField } from '../../src/vision/onnx/protobuf.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MODELS_DIR = process.env.MODELS_DIR ?? path.join(ROOT, 'data/models');

/** A one-node model Y = PRelu(X, slope) for X of shape [1, 3, 2, 2]. */
function preluModel(slope: number[], slopeDims: number[]): Uint8Array {
  const valueInfo = (field: number, name: string) =>
    messageField(field, [
      stringField(1, name),
      messageField(2, [messageField(1, [intField(1, 1), messageField(2, [1, 3, 2, 2].map((d) => messageField(1, [intField(1, d)])))])]),
    ]);
  const slopeTensor: Field[] = [...slopeDims.map((d) => intField(1, d)), intField(2, 1), ...slope.map((v) => floatField(4, v)), stringField(8, 'slope')];
  const graph: Field[] = [
    messageField(1, [stringField(1, 'X'), stringField(1, 'slope'), stringField(2, 'Y'), stringField(3, 'prelu'), stringField(4, 'PRelu')]),
    stringField(2, 'g'),
    messageField(5, slopeTensor),
    valueInfo(11, 'X'),
    valueInfo(12, 'Y'),
  ];
  return serializeMessage([intField(1, 7), messageField(8, [stringField(1, ''), intField(2, 13)]), messageField(7, graph)]);
}

async function run(model: Uint8Array, input: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  await session.release();
  return session.outputNames.map((name) => out[name].data as Float32Array);
}

describe('protobuf wire format', () => {
  it('writes back a parsed model byte for byte', () => {
    const file = path.join(MODELS_DIR, 'fr_feature.onnx');
    const bytes = fs.readFileSync(file);
    expect(Buffer.compare(Buffer.from(serializeMessage(parseMessage(bytes))), bytes)).toBe(0);
  });
});

describe('rewriteModel', () => {
  const x = Float32Array.from([3, -2, 0.5, -0.25, -1, 2, -8, 1e-3, 4, -4, -0.5, 0]);

  it('turns a per-channel PRelu into Relu/BatchNormalization/Add with exactly the same outputs', async () => {
    const slopes = [-1.35, 0.25, 1.23];
    const model = preluModel(slopes, [3, 1, 1]);
    const { bytes, report } = rewriteModel(model);
    expect(report).toEqual({ prelu: 1, weightInputs: 0, emptyPads: 0 });
    const ops = parseMessage(parseMessage(bytes).find((f) => f.field === 7)!.value as Uint8Array)
      .filter((f) => f.field === 1)
      .map((f) => new TextDecoder().decode((parseMessage(f.value as Uint8Array).find((g) => g.field === 4)!.value as Uint8Array)));
    expect(ops).toEqual(['Relu', 'BatchNormalization', 'Relu', 'BatchNormalization', 'Add']);
    const expected = Float32Array.from(x, (v, i) => (v > 0 ? v : Math.fround(slopes[Math.floor(i / 4)] * v)));
    const [original] = await run(model, x, [1, 3, 2, 2]);
    const [rewritten] = await run(bytes, x, [1, 3, 2, 2]);
    expect(Array.from(original)).toEqual(Array.from(expected));
    expect(Array.from(rewritten)).toEqual(Array.from(expected));
  });

  it('leaves a PRelu alone when its slopes do not run along the channels', () => {
    const model = preluModel([0.1, 0.2], [2]);
    const { bytes, report } = rewriteModel(model);
    expect(report.prelu).toBe(0);
    expect(bytes).toBe(model);
  });

  it('keeps the outputs of the default pack models (fr_feature bit for bit)', async () => {
    const cases = [
      { file: 'fr_feature.onnx', dims: [1, 3, 112, 112], tolerance: 0, expected: { prelu: 33, weightInputs: 0, emptyPads: 0 } },
      { file: 'fr_age.onnx', dims: [1, 3, 64, 64], tolerance: 1e-6, expected: { prelu: 0, weightInputs: 104, emptyPads: 5 } },
    ];
    for (const { file, dims, tolerance, expected } of cases) {
      const original = fs.readFileSync(path.join(MODELS_DIR, file));
      const { bytes, report } = rewriteModel(original);
      expect(report).toEqual(expected);
      const n = dims.reduce((a, b) => a * b, 1);
      const input = Float32Array.from({ length: n }, (_, i) => (((i * 7919) % 255) - 127) / 128);
      const before = await run(original, input, dims);
      const after = await run(bytes, input, dims);
      for (const [k, values] of before.entries()) {
        const diff = values.reduce((m, v, i) => Math.max(m, Math.abs(v - after[k][i])), 0);
        expect(diff, file).toBeLessThanOrEqual(tolerance);
      }
    }
  });
});
