// Where each UTF-16 unit of an analysed text came from in the document. A selection maps one to one; a decoded
// string literal maps the `\n` it holds to the two source characters `\` `n`; a rendered chat has template text
// that no source character produced. Tints, hovers and the panel's token labels all read this one map.

/** Unit i of the text came from document [starts[i], ends[i]); -1 for both when no source character produced it. */
export class TextMap {
  private mappedIndex: Int32Array | undefined;

  constructor(
    readonly starts: Int32Array,
    readonly ends: Int32Array,
  ) {
    if (starts.length !== ends.length) throw new Error('TextMap: starts and ends differ in length');
  }

  /** A text copied from document offset `base` on. */
  static identity(base: number, length: number): TextMap {
    const starts = new Int32Array(length),
      ends = new Int32Array(length);
    for (let i = 0; i < length; i++) {
      starts[i] = base + i;
      ends[i] = base + i + 1;
    }
    return new TextMap(starts, ends);
  }

  get length(): number {
    return this.starts.length;
  }

  /** The document range text [start, end) came from: first mapped unit's start to last mapped unit's end. */
  sourceRange(start: number, end: number): [number, number] | undefined {
    let first = -1,
      last = -1;
    for (let i = Math.max(0, start); i < Math.min(end, this.length); i++) {
      if (this.starts[i]! < 0) continue;
      if (first < 0) first = i;
      last = i;
    }
    return first < 0 ? undefined : [this.starts[first]!, this.ends[last]!];
  }

  /** The document range the whole text came from. */
  span(upTo = this.length): [number, number] | undefined {
    return this.sourceRange(0, upTo);
  }

  /** The text unit whose source holds document offset `offset`; -1 when none does. Sources are in text order. */
  textOffsetAt(offset: number): number {
    this.mappedIndex ??= Int32Array.from(
      Array.from({ length: this.length }, (_, i) => i).filter((i) => this.starts[i]! >= 0),
    );
    const idx = this.mappedIndex;
    let lo = 0,
      hi = idx.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const i = idx[mid]!;
      if (offset < this.starts[i]!) hi = mid - 1;
      else if (offset >= this.ends[i]!) lo = mid + 1;
      else {
        // Several units can share one source (an escape that decodes to a surrogate pair): take the first.
        let k = mid;
        while (k > 0 && this.starts[idx[k - 1]!] === this.starts[i]) k--;
        return idx[k]!;
      }
    }
    return -1;
  }
}

/** Builds a text and its TextMap piece by piece. */
export class TextMapBuilder {
  private text = '';
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** `value` copied from the document at `at` (one unit per source unit). */
  verbatim(value: string, at: number): this {
    for (let i = 0; i < value.length; i++) this.push(value[i]!, at + i, at + i + 1);
    return this;
  }

  /** `value` (an escape's decoded value, or a folded line break) produced by document [start, end). */
  decoded(value: string, start: number, end: number): this {
    for (const unit of value) for (let k = 0; k < unit.length; k++) this.push(unit[k]!, start, end);
    return this;
  }

  /** Text no source character produced (a chat template's own text). */
  unmapped(value: string): this {
    for (let i = 0; i < value.length; i++) this.push(value[i]!, -1, -1);
    return this;
  }

  /** Another text and its map, appended. */
  append(text: string, map: TextMap): this {
    for (let i = 0; i < text.length; i++) this.push(text[i]!, map.starts[i]!, map.ends[i]!);
    return this;
  }

  private push(unit: string, start: number, end: number): void {
    this.text += unit;
    this.starts.push(start);
    this.ends.push(end);
  }

  build(): { text: string; map: TextMap } {
    return { text: this.text, map: new TextMap(Int32Array.from(this.starts), Int32Array.from(this.ends)) };
  }
}

/** The sub-map of text [start, end) of a built text (a chat message's content inside its decoded literal). */
export function sliceMap(map: TextMap, start: number, end: number): TextMap {
  return new TextMap(map.starts.slice(start, end), map.ends.slice(start, end));
}

/**
 * Where document offset `offset` of `text` lies in `other`, another version of it (Git HEAD): the same offset in
 * their common prefix, shifted by the length change in their common suffix, and the edit's start in between.
 */
export function offsetInOtherVersion(text: string, other: string, offset: number): number {
  const limit = Math.min(text.length, other.length);
  let prefix = 0;
  while (prefix < limit && text.charCodeAt(prefix) === other.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix < limit - prefix &&
    text.charCodeAt(text.length - 1 - suffix) === other.charCodeAt(other.length - 1 - suffix)
  )
    suffix++;
  if (offset <= prefix) return offset;
  if (offset >= text.length - suffix) return offset - text.length + other.length;
  return prefix;
}
