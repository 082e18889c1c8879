// Short labels of the head metrics (attention/metrics), for the Heads table and the Distributions tab.
export const METRIC_LABELS: Record<string, string> = {
  entropy: 'entropy',
  normalizedEntropy: 'norm. entropy',
  meanDistance: 'mean dist.',
  firstToken: 'first tok.',
  cls: '[CLS]',
  sep: '[SEP]',
  previousToken: 'prev. tok.',
  self: 'self',
  duplicateToken: 'duplicate',
  induction: 'induction',
  selfDistance: '‖A−I‖/n',
  q: 'modularity Q',
  communityCount: 'communities',
};
