// The Distributions tab: histograms of the attention weights and of a metric across heads.
import { Methods, METRIC_NAMES, type HistogramResult } from '../../shared/protocol';
import { drawHistogram } from '../charts';
import { app, el, persist, rpc } from '../state';
import { METRIC_LABELS } from './heads';

const BINS = 20;

export async function showDistributions(): Promise<void> {
  if (!app.analysis) return;
  const { layer, head } = app.state;
  if (el.distMetric.options.length === 0) {
    for (const k of METRIC_NAMES) { const o = document.createElement('option'); o.value = k; o.textContent = `${METRIC_LABELS[k] ?? k} (${k})`; el.distMetric.append(o); }
  }
  el.distMetric.value = app.options.distMetric;
  // Hide special tokens: leave out every weight whose query or key is one (word level has no histogram counterpart).
  const excludeSpecial = app.options.hideSpecial;
  const weightsParams = { bins: BINS, ...(layer >= 0 ? { layer } : {}), ...(head >= 0 ? { head } : {}), ...(excludeSpecial ? { excludeSpecial } : {}) };
  const [w, mh] = await Promise.all([rpc(Methods.histogram, weightsParams), rpc(Methods.histogram, { bins: BINS, metric: app.options.distMetric })]);
  if (app.options.tab !== 'distributions' || excludeSpecial !== app.options.hideSpecial || layer !== app.state.layer || head !== app.state.head) return;
  const width = Math.max(320, Math.min(760, (document.body.clientWidth || 800) - 40));
  const where = `${layer < 0 ? 'all layers' : `layer ${layer}`}, ${head < 0 ? 'all heads' : `head ${head}`}${excludeSpecial ? ', special tokens excluded' : ''}`;
  if (w) {
    const h = w.result as unknown as HistogramResult;
    el.distWeightsTitle.textContent = `Attention weights — ${where} (${h.total} weights, ${h.counts.length} bins)${app.options.wordLevel ? ' · per token: word level does not apply here' : ''}`;
    drawHistogram(el.distWeights, h, width, 'attention weight');
    el.distWeights.setAttribute('aria-label', `Histogram of attention weights, ${where}: counts ${h.counts.join(', ')}`);
  }
  if (mh) {
    const h = mh.result as unknown as HistogramResult;
    el.distMetricTitle.textContent = `${METRIC_LABELS[app.options.distMetric] ?? app.options.distMetric} across all ${h.total} heads`;
    drawHistogram(el.distMetrics, h, width, app.options.distMetric);
    el.distMetrics.setAttribute('aria-label', `Histogram of ${app.options.distMetric} across heads: counts ${h.counts.join(', ')}`);
  } else {
    el.distMetricTitle.textContent = `${app.options.distMetric}: not available for this model`;
  }
  el.app.dataset.distributions = 'painted';
}

el.distMetric.addEventListener('change', () => { app.options.distMetric = el.distMetric.value; persist(); void showDistributions(); });
