// Reference implementations the tests hold the backend's answers against (the extension itself never pools or ranks:
// the backend does). Kept beside the tests, not in the extension's bundle.

/** Max-pools an n×m matrix into blocks of `factor`×`factor` (the last block may be smaller). */
function maxPool(data, rows, cols, factor) {
  if (factor <= 1) return { rows, cols, data };
  const pr = Math.ceil(rows / factor), pc = Math.ceil(cols / factor);
  const out = new Float32Array(pr * pc);
  for (let i = 0; i < rows; i++) {
    const oi = Math.floor(i / factor) * pc;
    for (let j = 0; j < cols; j++) {
      const v = data[i * cols + j], o = oi + Math.floor(j / factor);
      if (v > out[o]) out[o] = v;
    }
  }
  return { rows: pr, cols: pc, data: out };
}

/** Indices of the k largest scores, best first; ties keep the lower index first. `exclude` drops indices. */
function topK(scores, k, exclude) {
  const idx = [];
  for (let i = 0; i < scores.length; i++) if (!exclude || !exclude(i)) idx.push(i);
  idx.sort((a, b) => (scores[b] - scores[a]) || (a - b));
  return idx.slice(0, Math.max(0, k)).map((token) => ({ token, score: scores[token] }));
}

module.exports = { maxPool, topK };
