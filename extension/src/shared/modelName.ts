// How a person reads a model's id (an absolute folder, or "default"): the Hugging Face repo for a hub-cache snapshot
// (`…/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c` → `Qwen/Qwen2.5-0.5B-Instruct`), else the folder's
// name. The path itself stays for tooltips.

export const EMBEDDED_MODEL_NAME = 'all-MiniLM-L6-v2 (embedded)';

export function modelDisplayName(id: string | undefined): string {
  if (!id || id === 'default') return EMBEDDED_MODEL_NAME;
  const parts = id.replace(/[\\/]+$/, '').split(/[\\/]/);
  // The hub cache keeps repo "org/name" as models--org--name/snapshots/<revision>.
  const at = parts.lastIndexOf('snapshots');
  const repo = at > 0 && at === parts.length - 2 ? /^models--([^/]+?)--(.+)$/.exec(parts[at - 1]!) : null;
  if (repo) return `${repo[1]}/${repo[2]}`;
  return parts[parts.length - 1] || id;
}

/** What Select Model shows of a listed model: "Gemma 3 · 26 layers × 8 heads (4 kv) · window 512 · 1.9 GB". */
export function describeModel(m: {
  architecture: string;
  family?: string;
  layers: number;
  heads: number;
  keyValueHeads?: number;
  window?: number;
  sizeBytes?: number;
}): string {
  let shape = `${m.family || m.architecture} · ${m.layers} layers × ${m.heads} heads`;
  if (m.keyValueHeads && m.keyValueHeads !== m.heads) shape += ` (${m.keyValueHeads} kv)`;
  const parts = [shape];
  if (m.window) parts.push(`window ${m.window}`);
  if (m.sizeBytes) {
    const gb = m.sizeBytes >= 1e9;
    parts.push(gb ? `${(m.sizeBytes / 1e9).toFixed(1)} GB` : `${(m.sizeBytes / 1e6).toFixed(1)} MB`);
  }
  return parts.join(' · ');
}
