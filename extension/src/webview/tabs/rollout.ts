// The Rollout tab: attention rollout through the layers as a heatmap.
import { Heatmap } from '../heatmap';
import { Methods, type ViewUnit } from '../../shared/protocol';
import { app, el, rpc, unitLabels, viewFlags } from '../state';

const rolloutMap = new Heatmap(el.rolloutCanvas);

let rolloutUnits: ViewUnit[] = [];

export async function showRollout(): Promise<void> {
  if (!app.analysis) return;
  const r = await rpc(Methods.rollout, viewFlags());
  if (!r?.data || app.options.tab !== 'rollout') return;
  const res = r.result as { rows: number; cols: number; poolFactor: number; layer: number; units: ViewUnit[] };
  rolloutUnits = res.units;
  rolloutMap.set({ rows: res.rows, cols: res.cols, data: r.data, poolFactor: res.poolFactor }, unitLabels(res.units), unitLabels(res.units));
  rolloutMap.draw(Math.max(200, (document.body.clientWidth || 800) - 40), { row: null, col: null });
  el.rolloutCaption.textContent = `Attention rollout (Abnar & Zuidema 2020) through layer ${res.layer}: row i is how much token i's representation draws on each input token. Largest value ${rolloutMap.max.toFixed(3)}.`;
  el.app.dataset.rollout = 'painted';
}

el.rolloutCanvas.addEventListener('mousemove', (e) => {
  const m = rolloutMap.matrix;
  if (!m) return;
  const r = el.rolloutCanvas.getBoundingClientRect();
  const h = rolloutMap.hit(e.clientX - r.left, e.clientY - r.top);
  el.rolloutCanvas.title = h?.kind === 'cell' ? `${rolloutUnits[h.row]?.text ?? h.row} → ${rolloutUnits[h.col]?.text ?? h.col}: ${m.data[h.row * m.cols + h.col]!.toFixed(4)}` : '';
});
