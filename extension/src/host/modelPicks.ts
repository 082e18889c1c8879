// Select Model's list, built from models/list (pure: unit-tested). Every model is listed with what models/list says
// of it (family, size on disk, layers × heads, kv heads, window); one that cannot be used is marked with its reason
// and where it came from; Browse… and Open Settings are always there, also when the list itself failed.
import type { ModelListEntry } from '../shared/protocol';
import { EMBEDDED_MODEL_NAME } from '../shared/modelName';

export const MODEL_PATH_SETTING = 'attentionViz.modelPath';

export type ModelPick =
  | { kind: 'model'; label: string; description: string; detail: string; id: string; picked: boolean }
  | { kind: 'broken'; label: string; description: string; detail: string; id: string; reason: string; setting?: string }
  | { kind: 'unavailable'; label: string; detail: string }
  | { kind: 'browse'; label: string; detail: string }
  | { kind: 'settings'; label: string; detail: string }
  | { kind: 'separator'; label: string };

export interface PickContext {
  /** attentionViz.modelPath, trimmed ('' when unset). */
  modelPath: string;
  /** The model picked earlier with Select Model (kept per workspace). */
  selected: string | undefined;
  /** Why models/list failed, when it did. */
  listError?: string;
}

/** 1,234,567,890 bytes → "1.15 GB"; under a MB, "0.4 MB". */
export function formatSize(bytes: number): string {
  const mb = bytes / (1 << 20);
  if (mb >= 1024) return `${(mb / 1024).toFixed(2)} GB`;
  return `${mb >= 100 ? mb.toFixed(0) : mb.toFixed(1)} MB`;
}

const SOURCES: Record<string, string> = {
  embedded: 'embedded in the extension',
  'hf-cache': 'Hugging Face cache',
  path: MODEL_PATH_SETTING,
};

/**
 * What a usable model is: its family (else model_type), size on disk, shape, kv heads and window, and the sliding
 * window of its windowed layers: "Gemma 3 · 1.77 GB · 26 layers × 8 heads · 4 kv heads · window 32,768 · sliding 512".
 */
export function describeModel(m: ModelListEntry): string {
  const size = m.source === 'embedded' ? 'embedded' : m.sizeBytes != null ? formatSize(m.sizeBytes) : 'size unknown';
  const parts = [m.family || m.architecture, size, `${m.layers} layers × ${m.heads} heads`];
  if (m.keyValueHeads > 0) parts.push(`${m.keyValueHeads} kv heads`);
  if (m.window > 0) parts.push(`window ${m.window.toLocaleString('en-US')}`);
  if (m.slidingWindow) parts.push(`sliding ${m.slidingWindow.toLocaleString('en-US')}`);
  return parts.join(' · ');
}

/** The model analyses use now: attentionViz.modelPath, else the one picked, else the embedded one. */
export function modelInUse(c: Pick<PickContext, 'modelPath' | 'selected'>): string {
  return c.modelPath || c.selected || 'default';
}

/** The quick pick's items, in order: the models, then Browse… and Open Settings. */
export function modelPickItems(models: readonly ModelListEntry[] | undefined, c: PickContext): ModelPick[] {
  const items: ModelPick[] = [];
  const inUse = modelInUse(c);
  if (!models) {
    items.push({
      kind: 'unavailable',
      label: '$(error) The list of models is not available',
      detail: c.listError ?? 'The backend did not answer.',
    });
    items.push({
      kind: 'model',
      label: `${inUse === 'default' ? '$(check) ' : ''}${EMBEDDED_MODEL_NAME}`,
      description: 'the embedded model',
      detail: SOURCES.embedded!,
      id: 'default',
      picked: inUse === 'default',
    });
  }
  for (const m of models ?? []) {
    const where = SOURCES[m.source] ?? m.source;
    const detail = m.path ? `${where} · ${m.path}` : where;
    if (m.error) {
      const setting = m.source === 'path' ? MODEL_PATH_SETTING : undefined;
      items.push({
        kind: 'broken',
        label: `$(error) ${m.name}`,
        description: 'cannot be used',
        detail: `${m.error}${setting ? ` (from ${setting})` : ''}`,
        id: m.id,
        reason: m.error,
        ...(setting ? { setting } : {}),
      });
      continue;
    }
    const current = samePath(m.id, inUse);
    items.push({
      kind: 'model',
      label: `${current ? '$(check) ' : ''}${m.name}`,
      description: describeModel(m),
      detail: m.note ? `${detail} · ${m.note}` : detail,
      id: m.id,
      picked: current,
    });
  }
  items.push({ kind: 'separator', label: '' });
  items.push({
    kind: 'browse',
    label: '$(folder-opened) Browse…',
    detail: `Choose a model folder (config.json and weights); sets ${MODEL_PATH_SETTING}`,
  });
  items.push({
    kind: 'settings',
    label: '$(gear) Open Settings',
    detail: `${MODEL_PATH_SETTING} and the other AttentionViz settings`,
  });
  return items;
}

/** Ids are absolute folders (the backend's, normalised) or "default"; a setting may end in a slash. */
function samePath(a: string, b: string): boolean {
  const trim = (s: string) => s.replace(/[\\/]+$/, '');
  return trim(a) === trim(b);
}

/**
 * A model error in the user's words, naming the setting the model came from (attentionViz.modelPath, or the pick of
 * Select Model), and the button that fixes it.
 */
export function modelErrorMessage(
  message: string,
  c: Pick<PickContext, 'modelPath' | 'selected'>,
): { text: string; button: 'Open Settings' | 'Select Model' | undefined } {
  if (c.modelPath)
    return { text: `AttentionViz: ${message} (from the setting ${MODEL_PATH_SETTING})`, button: 'Open Settings' };
  if (c.selected && c.selected !== 'default')
    return { text: `AttentionViz: ${message} (the model picked with Select Model)`, button: 'Select Model' };
  return { text: `AttentionViz: ${message}`, button: undefined };
}
