// tree-sitter parsers, loaded once per grammar from the extension's media/grammars/ (the build copies the .wasm
// files there from the npm packages; nothing is fetched).
import * as path from 'node:path';
import { Language, Parser, type Tree } from 'web-tree-sitter';
import { GRAMMAR_WASM, type Grammar } from './literals';

export class Parsers {
  private init: Promise<void> | undefined;
  private readonly languages = new Map<Grammar, Promise<Language>>();

  /** `wasmDir` holds web-tree-sitter.wasm and every grammar's .wasm. */
  constructor(private readonly wasmDir: string) {}

  async parse(grammar: Grammar, text: string): Promise<Tree> {
    this.init ??= Parser.init({ locateFile: (file: string) => path.join(this.wasmDir, file) });
    await this.init;
    let language = this.languages.get(grammar);
    if (!language) {
      language = Language.load(path.join(this.wasmDir, GRAMMAR_WASM[grammar]));
      this.languages.set(grammar, language);
    }
    const parser = new Parser();
    try {
      parser.setLanguage(await language);
      const tree = parser.parse(text);
      if (!tree) throw new Error(`tree-sitter could not parse this ${grammar} file`);
      return tree;
    } finally {
      parser.delete();
    }
  }
}
