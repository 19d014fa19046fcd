/**
 * Exact rewrites of an ONNX model before onnxruntime loads it, each chosen by profiling (see
 * README, Vision speed). Outputs stay bit-identical except where BatchNormalization folding moves a
 * rounding (fr_age: at most 2e-7).
 *
 * - PRelu with per-channel slopes -> Relu(y) + BN(Relu(BN(y; -1)); -a). onnxruntime's NCHWc layout
 *   (blocked channels, its fastest convolutions) has no PRelu: each PRelu cost a kernel plus a
 *   reorder out of and back into that layout. Relu, BatchNormalization (as a 1x1 depthwise conv)
 *   and Add all stay in it. Exact: -a * -max(-y, 0) = a * min(y, 0), and y + -0 = y.
 * - Graph inputs that merely repeat an initializer are dropped: old exporters list every weight as
 *   an input, which tells onnxruntime the weights may be fed at run time, so it folds nothing.
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
const MODEL = { opsetImport: 8, graph: 7 } as const;
const OPSET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, f: 2, ints: 8, type: 20 } as const;
const ATTRIBUTE_FLOAT = 1;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9 } as const;
const FLOAT = 1;
const VALUE_INFO_NAME = 1;

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

/** The model with the rewrites applied, and what changed (all zeros: the bytes are returned as given). */
export function rewriteModel(bytes: Uint8Array): { bytes: Uint8Array; report: RewriteReport } {
  const model = parseMessage(bytes);
  const graphIndex = model.findIndex((f) => f.field === MODEL.graph);
  const report: RewriteReport = { prelu: 0, weightInputs: 0, emptyPads: 0 };
  if (graphIndex < 0) return { bytes, report };
  const graph = parseMessage(bytesOf(model[graphIndex]));

  const initializers = new Map<string, Initializer>();
  for (const f of graph) {
    if (f.field !== GRAPH.initializer) continue;
    const init = readInitializer(parseMessage(bytesOf(f)));
    initializers.set(init.name, init);
  }
  const graphOutputs = new Set(
    graph.filter((f) => f.field === GRAPH.output).map((f) => stringOf(parseMessage(bytesOf(f)).find((x) => x.field === VALUE_INFO_NAME)!)),
  );
  // BatchNormalization-9 takes no `spatial` or `is_test`: older graphs keep their PRelu.
  const canUseBatchNorm = defaultOpset(model) >= 9;

  const renamed = new Map<string, string>();
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

  for (const f of graph) {
    if (f.field === GRAPH.input) {
      const name = stringOf(parseMessage(bytesOf(f)).find((x) => x.field === VALUE_INFO_NAME)!);
      if (initializers.has(name)) {
        report.weightInputs++;
        continue;
      }
    }
    if (f.field !== GRAPH.node) {
      rewritten.push(f);
      continue;
    }
    const node = readNode(parseMessage(bytesOf(f)));
    if (isEmptyPad(node) && !graphOutputs.has(node.outputs[0])) {
      renamed.set(node.outputs[0], renamed.get(node.inputs[0]) ?? node.inputs[0]);
      report.emptyPads++;
      continue;
    }
    const input = (name: string) => renamed.get(name) ?? name;
    const slopes = node.opType === 'PRelu' && node.domain === '' && canUseBatchNorm ? channelSlopes(initializers.get(node.inputs[1])) : undefined;
    if (!slopes) {
      if (node.inputs.some((i) => renamed.has(i))) {
        rewritten.push(
          messageField(
            GRAPH.node,
            node.fields.map((x) => (x.field === NODE.input ? stringField(NODE.input, input(stringOf(x))) : x)),
          ),
        );
      } else {
        rewritten.push(f);
      }
      continue;
    }
    const y = input(node.inputs[0]);
    const p = `faceperks_prelu${report.prelu++}`;
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
