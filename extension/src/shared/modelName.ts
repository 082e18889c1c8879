// How a person reads a model's id (an absolute folder, or "default"): the Hugging Face repo for a hub-cache snapshot
// (`…/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c` → `Qwen/Qwen2.5-0.5B-Instruct`), else the folder's
// name. The path itself stays for tooltips. The backend has the same rule (Models/ModelName.cs, for the PNG titles
// and models/list); both are checked against one table, tests/reference/model-names/cases.json.

export const EMBEDDED_MODEL_NAME = 'all-MiniLM-L6-v2 (embedded)';

export function modelDisplayName(id: string | undefined): string {
  if (!id || id === 'default') return EMBEDDED_MODEL_NAME;
  const parts = id.replace(/[\\/]+$/, '').split(/[\\/]/);
  // The hub cache keeps repo "org/name" as models--org--name/snapshots/<revision> (and "gpt2" as models--gpt2).
  const at = parts.lastIndexOf('snapshots');
  const repo = at > 0 && at === parts.length - 2 ? /^models--(.+)$/.exec(parts[at - 1]!) : null;
  if (repo) return repo[1]!.replaceAll('--', '/');
  return parts[parts.length - 1] || id;
}
