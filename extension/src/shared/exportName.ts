// One name scheme for every export's default file name: the source file's stem, then what is drawn
// (`q880-attention-L2-H3.csv`, `q880-attention-grid.png`); PNG and CSV/JSON exports alike.

export function exportFileName(sourcePath: string, what: string, extension: string): string {
  const stem = sourcePath.slice(sourcePath.lastIndexOf('/') + 1).replace(/\.[^.]*$/, '') || 'selection';
  return `${stem}-attention-${what}.${extension}`;
}
