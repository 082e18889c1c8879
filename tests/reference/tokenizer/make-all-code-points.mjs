// Exhaustive differential data (NOT checked in: ~7 MB): for every code point up to U+33FFF and U+E0000–U+E01EF,
// the @lenml/tokenizers ids (no special tokens) of one short text that puts it inside a word, alone, and around a
// Greek capital sigma (final-sigma context). The opt-in test BertTokenizerAllCodePointsTests reads it.
//
// Usage (from this folder, after npm ci):
//   node make-all-code-points.mjs [VOCAB] > /tmp/bert-all-code-points.txt
//   BERT_ALL_CODE_POINTS=/tmp/bert-all-code-points.txt dotnet test ../../Backend.Tests -c Release
// Each line: "<code point>:<id>,<id>,...". Takes ~20 s.
import { loadVocabulary, makeTokenizer } from "./bert-tokenizer.mjs";

const tokenizer = makeTokenizer(loadVocabulary(process.argv[2]).lines);
const out = [];
for (let cp = 0; cp <= 0xe01ef; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  if (cp > 0x33fff && cp < 0xe0000) continue;
  const c = String.fromCodePoint(cp);
  // Keep in sync with BertTokenizerAllCodePointsTests.TextFor.
  const text = `x${c}y ${c} ΑΣ${c} Α${c}Σ ${c}Σ`;
  out.push(`${cp}:${tokenizer.encode(text, { add_special_tokens: false }).join(",")}`);
}
process.stdout.write(out.join("\n") + "\n");
