import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { rewriteModel } from '../../src/vision/onnx/graph-rewrite.js';
import { type Field, floatField, intField, messageField, parseMessage, serializeMessage, stringField } from '../../src/vision/onnx/protobuf.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MODELS_DIR = process.env.MODELS_DIR ?? path.join(ROOT, 'data/models');

/**
 * Y = PRelu(X, slope) for X of shape [1, 3, 2, 2], behind an identity 1x1 convolution when `conv`
 * (the rewrite only takes a PRelu on a 2-D convolution's output). `weightInputs` lists the
 * initializers as graph inputs too, as exporters before IR 4 had to.
 */
function preluModel(slope: number[], slopeDims: number[], options: { conv?: boolean; ir?: number; weightInputs?: boolean } = {}): Uint8Array {
  const { conv = true, ir = 7, weightInputs = false } = options;
  const valueInfo = (field: number, name: string, dims: number[]) =>
    messageField(field, [
      stringField(1, name),
      messageField(2, [messageField(1, [intField(1, 1), messageField(2, dims.map((d) => messageField(1, [intField(1, d)])))])]),
    ]);
  const tensor = (name: string, dims: number[], values: number[]): Field =>
    messageField(5, [...dims.map((d) => intField(1, d)), intField(2, 1), ...values.map((v) => floatField(4, v)), stringField(8, name)]);
  const node = (op: string, inputs: string[], output: string) =>
    messageField(1, [...inputs.map((i) => stringField(1, i)), stringField(2, output), stringField(3, op), stringField(4, op)]);
  const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const graph: Field[] = [
    ...(conv ? [node('Conv', ['X', 'W'], 'C'), node('PRelu', ['C', 'slope'], 'Y')] : [node('PRelu', ['X', 'slope'], 'Y')]),
    stringField(2, 'g'),
    ...(conv ? [tensor('W', [3, 3, 1, 1], identity)] : []),
    tensor('slope', slopeDims, slope),
    valueInfo(11, 'X', [1, 3, 2, 2]),
    ...(weightInputs ? [valueInfo(11, 'slope', slopeDims), ...(conv ? [valueInfo(11, 'W', [3, 3, 1, 1])] : [])] : []),
    valueInfo(12, 'Y', [1, 3, 2, 2]),
  ];
  return serializeMessage([intField(1, ir), messageField(8, [stringField(1, ''), intField(2, 13)]), messageField(7, graph)]);
}

function opTypes(model: Uint8Array): string[] {
  const graph = parseMessage(parseMessage(model).find((f) => f.field === 7)!.value as Uint8Array);
  return graph
    .filter((f) => f.field === 1)
    .map((f) => new TextDecoder().decode(parseMessage(f.value as Uint8Array).find((g) => g.field === 4)!.value as Uint8Array));
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
    expect(opTypes(bytes)).toEqual(['Conv', 'Relu', 'BatchNormalization', 'Relu', 'BatchNormalization', 'Add']);
    const expected = Float32Array.from(x, (v, i) => (v > 0 ? v : Math.fround(slopes[Math.floor(i / 4)] * v)));
    const [original] = await run(model, x, [1, 3, 2, 2]);
    const [rewritten] = await run(bytes, x, [1, 3, 2, 2]);
    expect(Array.from(original)).toEqual(Array.from(expected));
    expect(Array.from(rewritten)).toEqual(Array.from(expected));
  });

  it('leaves a PRelu alone when its slopes do not run along the channels or it does not follow a 2-D convolution', () => {
    for (const model of [preluModel([0.1, 0.2], [2]), preluModel([0.1, 0.2, 0.3], [3, 1, 1], { conv: false })]) {
      const { bytes, report } = rewriteModel(model);
      expect(report.prelu).toBe(0);
      expect(bytes).toBe(model);
    }
  });

  it('drops weights listed as graph inputs from IR 4 on, and keeps them before', async () => {
    const modern = rewriteModel(preluModel([0.1, 0.2, 0.3], [3, 1, 1], { weightInputs: true }));
    expect(modern.report).toEqual({ prelu: 1, weightInputs: 2, emptyPads: 0 });
    const [y] = await run(modern.bytes, x, [1, 3, 2, 2]);
    expect(Array.from(y)).toEqual(Array.from(x, (v, i) => (v > 0 ? v : Math.fround([0.1, 0.2, 0.3][Math.floor(i / 4)] * v))));
    const old = rewriteModel(preluModel([0.1, 0.2, 0.3], [3, 1, 1], { weightInputs: true, ir: 3 }));
    expect(old.report.weightInputs).toBe(0);
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
