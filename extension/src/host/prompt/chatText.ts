// A chat found in a file, rendered with the model's template into the text the model receives, with each content
// unit still mapped to its source characters and each message a named section.
import type { TextSection } from '../../shared/protocol';
import { TextMapBuilder, type TextMap } from '../../shared/textMap';
import { renderChat, type TokenizerConfig } from '../chatTemplate';
import type { PromptMessage } from './findPrompt';

export interface RenderedPrompt {
  text: string;
  /** Content units map to the file; the template's own text maps nowhere. */
  map: TextMap;
  /** One per message located in the rendered text, named by role ("user", "user 2", …). */
  sections: TextSection[];
  /** The rendered text already holds BOS: the tokenizer must not add special tokens again. */
  startsWithBos: boolean;
}

export function renderPrompt(
  messages: readonly PromptMessage[],
  config: TokenizerConfig,
  addGenerationPrompt: boolean,
): RenderedPrompt {
  const chat = renderChat(
    messages.map((m) => ({ role: m.role, content: m.text })),
    config,
    { addGenerationPrompt },
  );
  const out = new TextMapBuilder();
  let at = 0;
  const seen = new Map<string, number>();
  const sections: TextSection[] = [];
  for (const c of chat.contents) {
    out.unmapped(chat.text.slice(at, c.start));
    const message = messages[c.message]!;
    for (let k = 0; k < c.end - c.start; k++) {
      const i = c.contentStart + k;
      out.decoded(message.text[i]!, message.map.starts[i]!, message.map.ends[i]!);
    }
    const n = (seen.get(message.role) ?? 0) + 1;
    seen.set(message.role, n);
    sections.push({ name: n === 1 ? message.role : `${message.role} ${n}`, start: c.start, end: c.end });
    at = c.end;
  }
  out.unmapped(chat.text.slice(at));
  const { text, map } = out.build();
  return { text, map, sections, startsWithBos: chat.startsWithBos };
}
