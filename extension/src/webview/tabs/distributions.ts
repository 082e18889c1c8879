// The Distributions tab: histograms of the attention weights and of a metric across heads.
import { Methods, METRIC_NAMES } from '../../shared/protocol';
import { drawHistogram } from '../charts';
import { app, persist, rpc } from '../state';
import { frame } from '../frame';
import { h } from '../dom';
import { METRIC_LABELS } from '../metricLabels';

const ui = {
  distWeightsTitle: h('h3', { id: 'dist-weights-title', class: 'chart-title' }, 'Attention weights'),
  distWeights: h('canvas', { id: 'dist-weights', 'aria-labelledby': 'dist-weights-title' }),
  distMetric: h('select', { id: 'dist-metric', 'aria-label': 'Metric histogram' }),
  distMetricTitle: h('h3', { id: 'dist-metric-title', class: 'chart-title' }, 'Metric'),
  distMetrics: h('canvas', { id: 'dist-metrics', 'aria-labelledby': 'dist-metric-title' }),
};
frame.tabPanels.distributions.append(
  ui.distWeightsTitle,
  ui.distWeights,
  h('div', { class: 'tab-controls' }, h('label', {}, 'Metric across heads ', ui.distMetric)),
  ui.distMetricTitle,
  ui.distMetrics,
);

const BINS = 20;

export async function showDistributions(): Promise<void> {
  if (!app.analysis) return;
  const { layer, head } = app.state;
  if (ui.distMetric.options.length === 0) {
    for (const k of METRIC_NAMES) {
      const o = document.createElement('option');
      o.value = k;
      o.textContent = `${METRIC_LABELS[k] ?? k} (${k})`;
      ui.distMetric.append(o);
    }
  }
  ui.distMetric.value = app.options.distMetric;
  // Hide special tokens: leave out every weight whose query or key is one (word level has no histogram counterpart).
  const excludeSpecial = app.options.hideSpecial;
  const weightsParams = {
    bins: BINS,
    ...(layer >= 0 ? { layer } : {}),
    ...(head >= 0 ? { head } : {}),
    ...(excludeSpecial ? { excludeSpecial } : {}),
  };
  const [w, mh] = await Promise.all([
    rpc(Methods.histogram, weightsParams),
    rpc(Methods.histogram, { bins: BINS, metric: app.options.distMetric }),
  ]);
  if (
    app.options.tab !== 'distributions' ||
    excludeSpecial !== app.options.hideSpecial ||
    layer !== app.state.layer ||
    head !== app.state.head
  )
    return;
  const width = Math.max(320, Math.min(760, (document.body.clientWidth || 800) - 40));
  const layerName = layer < 0 ? 'all layers' : `layer ${layer}`;
  const headName = head < 0 ? 'all heads' : `head ${head}`;
  const where = `${layerName}, ${headName}${excludeSpecial ? ', special tokens excluded' : ''}`;
  if (w) {
    const h = w.result;
    const wordNote = app.options.wordLevel ? ' · per token: word level does not apply here' : '';
    const size = `${h.total} weights, ${h.counts.length} bins`;
    ui.distWeightsTitle.textContent = `Attention weights — ${where} (${size})${wordNote}`;
    drawHistogram(ui.distWeights, h, width, 'attention weight');
    ui.distWeights.setAttribute(
      'aria-label',
      `Histogram of attention weights, ${where}: counts ${h.counts.join(', ')}`,
    );
  }
  if (mh) {
    const h = mh.result;
    const metricLabel = METRIC_LABELS[app.options.distMetric] ?? app.options.distMetric;
    ui.distMetricTitle.textContent = `${metricLabel} across all ${h.total} heads`;
    drawHistogram(ui.distMetrics, h, width, app.options.distMetric);
    ui.distMetrics.setAttribute(
      'aria-label',
      `Histogram of ${app.options.distMetric} across heads: counts ${h.counts.join(', ')}`,
    );
  } else {
    ui.distMetricTitle.textContent = `${app.options.distMetric}: not available for this model`;
  }
  frame.app.dataset.distributions = 'painted';
}

ui.distMetric.addEventListener('change', () => {
  app.options.distMetric = ui.distMetric.value;
  persist();
  void showDistributions();
});
