/**
 * Rewrites of an ONNX model before onnxruntime loads it, each chosen by profiling (see README,
 * Benchmarks). Outputs stay identical for finite values (up to the sign of a zero), except where
 * BatchNormalization folding moves a rounding (fr_age: at most 1e-7).
 *
 * - PRelu with per-channel slopes -> Relu(y) + BN(Relu(BN(y; -1)); -a). onnxruntime's NCHWc layout
 *   (blocked channels, its fastest convolutions) has no PRelu: each PRelu cost a kernel plus a
 *   reorder out of and back into that layout. Relu, BatchNormalization (as a 1x1 depthwise conv)
 *   and Add all stay in it. For y < 0: (-a) * max(-y, 0) = a * y exactly; for y > 0: y + (+-0) = y.
 * - Graph inputs that merely repeat an initializer are dropped (IR 4 and later): old exporters
 *   list every weight as an input, which tells onnxruntime the weights may be fed at run time, so
 *   it folds nothing.
 * - Pad nodes whose pads are all zero are removed.
 */
import {
  bytesOf,
  type Field,
  floatField,
  intField,
  integersOf,
  messageField,
  parseMessage,
  serializeMessage,
  stringField,
  stringOf,
} from './protobuf.js';

// Field numbers of onnx.proto.
const MODEL = { irVersion: 1, opsetImport: 8, graph: 7 } as const;
const OPSET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, f: 2, g: 6, ints: 8, graphs: 11, type: 20 } as const;
const ATTRIBUTE_FLOAT = 1;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9, dataLocation: 14 } as const;
const EXTERNAL = 1n;
const FLOAT = 1;
const VALUE_INFO_NAME = 1;
/** Prefix of every name the rewrites add; a model already using it is left alone. */
const GENERATED = 'faceperks_';

export type RewriteReport = { prelu: number; weightInputs: number; emptyPads: number };

type Node = { inputs: string[]; outputs: string[]; opType: string; domain: string; fields: Field[] };

function readNode(fields: Field[]): Node {
  const node: Node = { inputs: [], outputs: [], opType: '', domain: '', fields };
  for (const f of fields) {
    if (f.field === NODE.input) node.inputs.push(stringOf(f));
    else if (f.field === NODE.output) node.outputs.push(stringOf(f));
    else if (f.field === NODE.opType) node.opType = stringOf(f);
    else if (f.field === NODE.domain) node.domain = stringOf(f);
  }
  return node;
}

function makeNode(opType: string, name: string, inputs: string[], outputs: string[], attributes: Field[][] = []): Field {
  return messageField(GRAPH.node, [
    ...inputs.map((i) => stringField(NODE.input, i)),
    ...outputs.map((o) => stringField(NODE.output, o)),
    stringField(NODE.name, name),
    stringField(NODE.opType, opType),
    ...attributes.map((a) => messageField(NODE.attribute, a)),
  ]);
}

function floatTensor(name: string, dims: number[], values: Float32Array): Field {
  return messageField(GRAPH.initializer, [
    ...dims.map((d) => intField(TENSOR.dims, d)),
    intField(TENSOR.dataType, FLOAT),
    stringField(TENSOR.name, name),
    { field: TENSOR.rawData, wire: 2, value: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) },
  ]);
}

type Initializer = { name: string; dims: number[]; floats?: Float32Array };

function readInitializer(fields: Field[]): Initializer {
  const dims = integersOf(fields, TENSOR.dims);
  let name = '';
  let dataType = 0;
  let raw: Uint8Array | undefined;
  const listed: number[] = [];
  for (const f of fields) {
    if (f.field === TENSOR.name) name = stringOf(f);
    else if (f.field === TENSOR.dataType && f.wire === 0) dataType = Number(f.value);
    else if (f.field === TENSOR.rawData) raw = bytesOf(f);
    else if (f.field === TENSOR.floatData) {
      const bytes = f.wire === 2 ? bytesOf(f) : (f.value as Uint8Array);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i + 4 <= bytes.length; i += 4) listed.push(view.getFloat32(i, true));
    }
  }
  if (dataType !== FLOAT) return { name, dims };
  // A copy: `raw` may be a view into a larger (and unaligned) buffer.
  const floats = raw ? new Float32Array(new Uint8Array(raw).buffer) : Float32Array.from(listed);
  return { name, dims, floats };
}

/** Per-channel slopes of an NCHW PRelu: shape [C,1,1] or [1,C,1,1] with C > 1. */
function channelSlopes(slope: Initializer | undefined): Float32Array | undefined {
  if (!slope?.floats || slope.floats.length < 2) return undefined;
  const dims = slope.dims[0] === 1 && slope.dims.length === 4 ? slope.dims.slice(1) : slope.dims;
  return dims.length === 3 && dims[0] === slope.floats.length && dims[1] === 1 && dims[2] === 1 ? slope.floats : undefined;
}

function defaultOpset(model: Field[]): number {
  for (const f of model) {
    if (f.field !== MODEL.opsetImport) continue;
    const opset = parseMessage(bytesOf(f));
    const domain = opset.find((x) => x.field === OPSET.domain);
    if (domain && stringOf(domain) !== '' && stringOf(domain) !== 'ai.onnx') continue;
    const version = opset.find((x) => x.field === OPSET.version);
    if (version?.wire === 0) return Number(version.value);
  }
  return 0;
}

function isEmptyPad(node: Node): boolean {
  if (node.opType !== 'Pad' || node.domain !== '' || node.inputs.length !== 1) return false;
  for (const f of node.fields) {
    if (f.field !== NODE.attribute) continue;
    const attribute = parseMessage(bytesOf(f));
    const name = attribute.find((x) => x.field === ATTRIBUTE.name);
    if (name && stringOf(name) === 'pads') return integersOf(attribute, ATTRIBUTE.ints).every((p) => p === 0);
  }
  return false;
}

/** True when some node carries a subgraph (If, Loop, Scan): names there are not rewired, so leave the model alone. */
function hasSubgraphs(nodes: Node[]): boolean {
  return nodes.some((node) =>
    node.fields.some((f) => f.field === NODE.attribute && parseMessage(bytesOf(f)).some((x) => x.field === ATTRIBUTE.g || x.field === ATTRIBUTE.graphs)),
  );
}

/**
 * The model with the rewrites applied, and what changed (all zeros: the bytes are returned as given).
 * Throws on input that is not a readable ONNX model; `createSession` then loads the file as it is.
 */
export function rewriteModel(bytes: Uint8Array): { bytes: Uint8Array; report: RewriteReport } {
  const model = parseMessage(bytes);
  const graphIndex = model.findIndex((f) => f.field === MODEL.graph);
  const report: RewriteReport = { prelu: 0, weightInputs: 0, emptyPads: 0 };
  if (graphIndex < 0) return { bytes, report };
  const graph = parseMessage(bytesOf(model[graphIndex]));
  const nodes = graph.filter((f) => f.field === GRAPH.node).map((f) => readNode(parseMessage(bytesOf(f))));
  const names = new Set(nodes.flatMap((node) => [...node.inputs, ...node.outputs]));
  if (hasSubgraphs(nodes) || [...names].some((name) => name.startsWith(GENERATED))) return { bytes, report };

  const initializers = new Map<string, Initializer>();
  for (const f of graph) {
    if (f.field !== GRAPH.initializer) continue;
    const tensor = parseMessage(bytesOf(f));
    // Weights in files beside the model are found relative to its path: such a model loads as it is.
    if (tensor.some((x) => x.field === TENSOR.dataLocation && x.value === EXTERNAL)) return { bytes, report };
    const init = readInitializer(tensor);
    initializers.set(init.name, init);
  }
  const valueName = (f: Field) => stringOf(parseMessage(bytesOf(f)).find((x) => x.field === VALUE_INFO_NAME)!);
  const graphOutputs = new Set(graph.filter((f) => f.field === GRAPH.output).map(valueName));
  const producers = new Map(nodes.flatMap((node) => node.outputs.map((output) => [output, node] as const)));
  // Before IR 4 initializers had to be listed as inputs and are constants anyway.
  const irVersion = model.find((f) => f.field === MODEL.irVersion);
  const dropWeightInputs = irVersion?.wire === 0 && irVersion.value >= 4n;
  // BatchNormalization-9 takes no `spatial` or `is_test`: older graphs keep their PRelu.
  const canUseBatchNorm = defaultOpset(model) >= 9;

  // Empty Pads go first, so every consumer is rewired whatever the node order.
  const renamed = new Map<string, string>();
  for (const node of nodes) {
    if (isEmptyPad(node) && !graphOutputs.has(node.outputs[0])) renamed.set(node.outputs[0], node.inputs[0]);
  }
  const source = (name: string): string => (renamed.has(name) ? source(renamed.get(name)!) : name);
  /**
   * Slopes of a PRelu that can become BatchNormalization: per channel, finite, on the output of a
   * 2-D convolution (4-D weights), since BatchNormalization scales axis 1 whatever the rank while
   * PRelu broadcasts its [C,1,1] slopes from the right; the two agree only on 4-D tensors.
   */
  const rewritableSlopes = (node: Node): Float32Array | undefined => {
    if (node.opType !== 'PRelu' || node.domain !== '' || !canUseBatchNorm) return undefined;
    const producer = producers.get(source(node.inputs[0]));
    if (producer?.opType !== 'Conv' || producer.domain !== '' || initializers.get(producer.inputs[1])?.dims.length !== 4) return undefined;
    const slopes = channelSlopes(initializers.get(node.inputs[1]));
    return slopes?.every(Number.isFinite) ? slopes : undefined;
  };

  const rewritten: Field[] = [];
  const added: Field[] = [];
  const scale = (name: string, input: string, output: string, values: Float32Array): Field => {
    const c = values.length;
    added.push(
      floatTensor(`${name}_scale`, [c], values),
      floatTensor(`${name}_bias`, [c], new Float32Array(c)),
      floatTensor(`${name}_mean`, [c], new Float32Array(c)),
      floatTensor(`${name}_var`, [c], new Float32Array(c).fill(1)),
    );
    const epsilon = [stringField(ATTRIBUTE.name, 'epsilon'), floatField(ATTRIBUTE.f, 0), intField(ATTRIBUTE.type, ATTRIBUTE_FLOAT)];
    return makeNode('BatchNormalization', name, [input, `${name}_scale`, `${name}_bias`, `${name}_mean`, `${name}_var`], [output], [epsilon]);
  };

  let nodeIndex = 0;
  for (const f of graph) {
    if (f.field === GRAPH.input && dropWeightInputs && initializers.has(valueName(f))) {
      report.weightInputs++;
      continue;
    }
    if (f.field !== GRAPH.node) {
      rewritten.push(f);
      continue;
    }
    const node = nodes[nodeIndex++];
    if (renamed.has(node.outputs[0]) && isEmptyPad(node)) {
      report.emptyPads++;
      continue;
    }
    const slopes = rewritableSlopes(node);
    if (!slopes) {
      const rewire = node.inputs.some((i) => renamed.has(i));
      rewritten.push(
        rewire ? messageField(GRAPH.node, node.fields.map((x) => (x.field === NODE.input ? stringField(NODE.input, source(stringOf(x))) : x))) : f,
      );
      continue;
    }
    const y = source(node.inputs[0]);
    const p = `${GENERATED}prelu${report.prelu++}`;
    rewritten.push(
      makeNode('Relu', `${p}_positive`, [y], [`${p}_positive`]),
      scale(`${p}_negate`, y, `${p}_negated`, new Float32Array(slopes.length).fill(-1)),
      makeNode('Relu', `${p}_negative`, [`${p}_negated`], [`${p}_negative`]),
      scale(`${p}_slope`, `${p}_negative`, `${p}_sloped`, slopes.map((a) => -a)),
      makeNode('Add', `${p}_add`, [`${p}_positive`, `${p}_sloped`], node.outputs),
    );
  }
  if (report.prelu + report.weightInputs + report.emptyPads === 0) return { bytes, report };
  const out = [...model];
  out[graphIndex] = messageField(MODEL.graph, [...rewritten, ...added]);
  return { bytes: serializeMessage(out), report };
}
