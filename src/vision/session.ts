/** onnxruntime-node sessions: created once per model and reused; options chosen by measurement. */
import fs from 'node:fs';
import ort from 'onnxruntime-node';
import { rewriteModel } from './onnx/graph-rewrite.js';

export type Session = ort.InferenceSession;
export { ort };

/**
 * Spinning is off: with 2 threads in a process that alternates between models, ORT's default spinning
 * threads steal the cores from each other and from the next model (more than halved throughput here).
 * Log severity 3: the SSR-Net files warn once per weight otherwise.
 * Denormals as zero: real face crops drive some activations into denormal floats, which the CPU
 * handles in microcode; flushing them made fr_feature 62 -> 38 ms and age+gender 52 -> 9.5 ms per
 * image here, with identical evaluation results.
 * Optimisation level 'all': the fastest for every model here (onnxruntime-node 1.24, denormals flushed).
 * The graph is first rewritten for onnxruntime's fastest layout (onnx/graph-rewrite.ts).
 */
export async function createSession(file: string, threads = 1): Promise<Session> {
  const model = rewrittenOrPath(file);
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: Math.max(1, threads),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' }, set_denormal_as_zero: '1' } },
  };
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

/** The rewritten model, or the file's path when nothing changed or the rewrite could not read it (onnxruntime will say why). */
function rewrittenOrPath(file: string): Uint8Array | string {
  try {
    const original = fs.readFileSync(file);
    const { bytes } = rewriteModel(original);
    return bytes === original ? file : bytes;
  } catch {
    return file;
  }
}

export function tensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}
