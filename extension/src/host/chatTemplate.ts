// A chat (messages with roles) rendered the way the model receives it: the model's own chat_template from its
// tokenizer_config.json, run by @huggingface/jinja (the Jinja engine transformers.js uses, so templates behave as in
// transformers), with each message's content located in the rendered text so that its tokens map back to the source.
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
}

/** The parts of tokenizer_config.json the rendering reads. Special tokens may be strings or AddedToken objects. */
export interface TokenizerConfig {
  chat_template?: string | { name: string; template: string }[];
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
}

/** Where message `message`'s content landed: rendered[start, end) is content[contentStart, …) of the same length. */
export interface ContentRange {
  message: number;
  start: number;
  end: number;
  contentStart: number;
}

export interface RenderedChat {
  text: string;
  contents: ContentRange[];
  /** The text begins with the BOS token: the tokenizer must not add another. */
  startsWithBos: boolean;
}

export class ChatTemplateError extends Error {}

function tokenText(t: TokenizerConfig['bos_token']): string {
  return typeof t === 'string' ? t : (t?.content ?? '');
}

/** The config's default template (a named list holds one called "default"); undefined when the model has none. */
export function templateOf(config: TokenizerConfig): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  return t?.find((x) => x.name === 'default')?.template;
}

/**
 * Renders `messages` with the model's chat template. Throws ChatTemplateError when the model has no template, or
 * when the template fails (its message says which message, when the template raised it).
 */
export function renderChat(
  messages: readonly ChatMessage[],
  config: TokenizerConfig,
  options: { addGenerationPrompt: boolean },
): RenderedChat {
  const source = templateOf(config);
  if (!source)
    throw new ChatTemplateError('This model has no chat template (tokenizer_config.json has no chat_template).');
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(`The model's chat template does not parse: ${(e as Error).message}`);
  }
  const bos = tokenText(config.bos_token);
  const render = (contents: readonly string[]): string => {
    try {
      return template.render({
        messages: messages.map((m, i) => ({ role: m.role, content: contents[i] })),
        add_generation_prompt: options.addGenerationPrompt,
        bos_token: bos,
        eos_token: tokenText(config.eos_token),
      });
    } catch (e) {
      throw new ChatTemplateError(`The chat template failed: ${(e as Error).message}`);
    }
  };
  const text = render(messages.map((m) => m.content));
  return { text, contents: locate(text, messages, render), startsWithBos: bos !== '' && text.startsWith(bos) };
}

/**
 * Finds each content in the rendered text: a second rendering with a marker for each content gives the template's
 * own text between contents; each content then sits between two of those pieces, as given or trimmed (templates
 * such as Llama 3's trim it). A content the template does not emit verbatim (or trimmed) gets no range.
 */
function locate(
  text: string,
  messages: readonly ChatMessage[],
  render: (contents: readonly string[]) => string,
): ContentRange[] {
  // Private-use characters: no prompt or template writes them.
  const marker = (i: number): string => `\uE000${i}\uE001`;
  const marked = render(messages.map((_, i) => marker(i)));
  const pieces: { message: number; before: string }[] = [];
  let rest = marked;
  for (;;) {
    const m = /\uE000(\d+)\uE001/.exec(rest);
    if (!m) break;
    pieces.push({ message: Number(m[1]), before: rest.slice(0, m.index) });
    rest = rest.slice(m.index + m[0].length);
  }
  const ranges: ContentRange[] = [];
  let at = 0;
  for (const { message, before } of pieces) {
    if (!text.startsWith(before, at)) return ranges; // the template's structure depends on the contents: stop here
    at += before.length;
    const content = messages[message]!.content;
    const trimmed = content.trim();
    const emitted = text.startsWith(content, at) ? content : text.startsWith(trimmed, at) ? trimmed : undefined;
    if (emitted === undefined) return ranges;
    const contentStart = emitted === content ? 0 : content.indexOf(trimmed);
    ranges.push({ message, start: at, end: at + emitted.length, contentStart });
    at += emitted.length;
  }
  return ranges;
}
