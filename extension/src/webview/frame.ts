// The panel's frame, built into the root the host's page supplies: the toolbar (layer, head, view,
// view options), the tab list with one tab panel per tab (each tab fills its own), the notice and
// the status line.
import { h, OWN_KEYS } from './dom';

export type TabId = 'heatmap' | 'heads' | 'graph' | 'lines' | 'distributions' | 'rollout' | 'sections' | 'diff';
const TAB_LABELS: Record<TabId, string> = {
  heatmap: 'Heatmap',
  heads: 'Heads',
  graph: 'Graph',
  lines: 'Lines',
  distributions: 'Distributions',
  rollout: 'Rollout',
  sections: 'Sections',
  diff: 'Diff',
};
export const TABS = Object.keys(TAB_LABELS) as TabId[];

function buildFrame() {
  const app = document.querySelector<HTMLDivElement>('#app')!; // the one element the host's page declares
  const layer = h('select', { id: 'layer', 'aria-label': 'Layer' });
  const head = h('select', { id: 'head', 'aria-label': 'Head' });
  const viewHead = h('button', { id: 'view-head', type: 'button', 'aria-pressed': 'true' }, 'Head');
  const viewGrid = h('button', { id: 'view-grid', type: 'button', 'aria-pressed': 'false' }, 'All heads');
  const hideSpecial = h('input', { type: 'checkbox', id: 'hide-special' });
  const wordLevel = h('input', { type: 'checkbox', id: 'word-level' });
  const meta = h('span', { id: 'meta', class: 'meta' });
  const toolbar = h(
    'header',
    { id: 'toolbar', role: 'toolbar', 'aria-label': 'Attention view' },
    h('label', {}, 'Layer ', layer),
    ' ',
    h('label', {}, 'Head ', head),
    ' ',
    h('span', { class: 'view-switch', role: 'group', 'aria-label': 'View' }, viewHead, ' ', viewGrid),
    ' ',
    h('label', { class: 'toggle' }, hideSpecial, ' Hide special tokens'),
    ' ',
    h('label', { class: 'toggle' }, wordLevel, ' Word level'),
    ' ',
    meta,
  );
  const tabButtons = {} as Record<TabId, HTMLButtonElement>;
  const tabPanels = {} as Record<TabId, HTMLDivElement>;
  for (const t of TABS) {
    const first = t === TABS[0];
    tabButtons[t] = h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `tab-${t}`,
        'aria-controls': `panel-${t}`,
        'aria-selected': String(first),
        tabindex: first ? 0 : -1,
      },
      TAB_LABELS[t],
    );
    tabPanels[t] = h('div', {
      role: 'tabpanel',
      id: `panel-${t}`,
      'aria-labelledby': `tab-${t}`,
      tabindex: -1,
      hidden: !first,
    });
  }
  const tabs = h(
    'div',
    { id: 'tabs', role: 'tablist', 'aria-label': 'Views', [OWN_KEYS]: true },
    ...TABS.map((t) => tabButtons[t]),
  );
  const notice = h('div', { id: 'notice', class: 'notice', hidden: true });
  const status = h('footer', { id: 'status', class: 'status', role: 'status' });
  app.append(toolbar, tabs, notice, h('main', { id: 'main' }, ...TABS.map((t) => tabPanels[t])), status);
  return {
    app,
    layer,
    head,
    viewHead,
    viewGrid,
    hideSpecial,
    wordLevel,
    meta,
    tabs,
    tabButtons,
    tabPanels,
    notice,
    status,
  };
}

/** The frame's elements (built once, when the bundle loads). */
export const frame = buildFrame();
