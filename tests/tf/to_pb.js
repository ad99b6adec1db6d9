// to_pb.js — a TF.js graph model as a frozen GraphDef in protobuf text
// format, every weight a Const's `value` tensor (tensor_content; quantized
// weights as TF.js decodes them), for `protoc --encode=tensorflow.GraphDef`
// with the project's proto/graph.proto: the binary form of the same graph.
'use strict';
const fs = require('fs');

function esc(bytes) { // text-format bytes: printable ASCII as is, the rest octal
  let s = '';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + b.toString(8).padStart(3, '0');
  }
  return s;
}
const b64 = (s) => Buffer.from(s, 'base64');
const num = (f) => (typeof f === 'string' ? (f === 'NaN' ? 'nan' : f === 'Infinity' ? 'inf' : f === '-Infinity' ? '-inf' : f) : String(f));
const dt = (t) => (typeof t === 'number' ? String(t) : t);

function shape(s) {
  let o = 'shape {';
  for (const d of s.dim || []) o += ` dim { size: ${d.size || 0} }`;
  if (s.unknownRank) o += ' unknown_rank: true';
  return o + ' }';
}

function tensorShape(s) { return shape(s || {}).replace(/^shape/, 'tensor_shape'); }

function tensor(t, key = 'tensor') {
  let o = `${key} { dtype: ${dt(t.dtype)} ${tensorShape(t.tensorShape)}`;
  if (t.tensorContent) o += ` tensor_content: "${esc(b64(t.tensorContent))}"`;
  for (const [j, p] of [['floatVal', 'float_val'], ['doubleVal', 'double_val'], ['intVal', 'int_val'],
    ['int64Val', 'int64_val'], ['boolVal', 'bool_val'], ['halfVal', 'half_val']])
    for (const v of t[j] || []) o += ` ${p}: ${num(v)}`;
  return o + ' }';
}

function attrValue(a) {
  if (a.list) {
    const l = a.list;
    let o = 'list {';
    for (const s of l.s || []) o += ` s: "${esc(b64(s))}"`;
    for (const i of l.i || []) o += ` i: ${i}`;
    for (const f of l.f || []) o += ` f: ${num(f)}`;
    for (const b of l.b || []) o += ` b: ${b}`;
    for (const t of l.type || []) o += ` type: ${dt(t)}`;
    for (const s of l.shape || []) o += ' ' + shape(s);
    for (const t of l.tensor || []) o += ' ' + tensor(t);
    return o + ' }';
  }
  if ('s' in a) return `s: "${esc(b64(a.s))}"`;
  if ('i' in a) return `i: ${a.i}`;
  if ('f' in a) return `f: ${num(a.f)}`;
  if ('b' in a) return `b: ${a.b}`;
  if ('type' in a) return `type: ${dt(a.type)}`;
  if ('shape' in a) return shape(a.shape);
  if ('tensor' in a) return tensor(a.tensor);
  return null; // func, placeholder: not written
}

const TF_DTYPE = { float32: 'DT_FLOAT', int32: 'DT_INT32', bool: 'DT_BOOL' };

// weights: name -> {dtype, shape, bytes} (tf.io.decodeWeights' values).
function toPbtxt(json, weights) {
  const out = [];
  for (const n of json.modelTopology.node) {
    out.push('node {');
    out.push(`  name: "${esc(Buffer.from(n.name))}"`);
    out.push(`  op: "${n.op}"`);
    for (const i of n.input || []) out.push(`  input: "${esc(Buffer.from(i))}"`);
    if (n.device) out.push(`  device: "${n.device}"`);
    const attr = Object.assign({}, n.attr || {});
    const w = n.op === 'Const' ? weights[n.name] : null;
    if (w) attr.value = { tensor: { dtype: TF_DTYPE[w.dtype], tensorShape: { dim: w.shape.map((d) => ({ size: d })) },
      tensorContent: Buffer.from(w.bytes).toString('base64') } };
    for (const k of Object.keys(attr).sort()) {
      const v = attrValue(attr[k]);
      if (v !== null) out.push(`  attr { key: "${k}" value { ${v} } }`);
    }
    out.push('}');
  }
  if (json.modelTopology.versions && json.modelTopology.versions.producer)
    out.push(`versions { producer: ${json.modelTopology.versions.producer} }`);
  return out.join('\n') + '\n';
}

// The model's weights decoded as TF.js decodes them.
function decodeWeights(tf, jsonPath, json) {
  const path = require('path');
  const dir = path.dirname(jsonPath);
  const specs = [], bufs = [];
  for (const g of json.weightsManifest || []) {
    for (const w of g.weights) specs.push(w);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const map = tf.io.decodeWeights(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength), specs);
  const res = {};
  for (const [name, t] of Object.entries(map)) {
    const d = t.dataSync();
    res[name] = { dtype: t.dtype, shape: t.shape, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
    t.dispose();
  }
  return res;
}

module.exports = { toPbtxt, decodeWeights };
