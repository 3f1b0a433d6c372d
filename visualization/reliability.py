"""Reliability diagrams (paper Figure 2, left): accuracy per confidence bin, with the diagonal,
and below it how many examples each bin holds (a bin of a few examples says little)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from calibration import metrics
from data.run_directory import run_files

MIN_COUNT = 10  # bins with fewer examples are drawn hollow and off the curve's line


def plot_reliability(curves, path_stem, title='', num_bins=metrics.NUM_BINS,
                     min_count=MIN_COUNT):
  """curves: [(label, logits, labels, temperature)]. Writes path_stem.{png,pdf,json}.

  Each curve joins (mean confidence, accuracy) of its bins holding at least `min_count`
  examples; sparser non-empty bins are hollow markers without a line. The lower panel shows
  every curve's count per bin (log scale). The legend sits below the panels, off the data. The
  JSON holds all `num_bins` bins of every curve, empty ones as null.
  """
  fig, (ax, counts) = plt.subplots(2, 1, figsize=(5, 6.6), sharex=True,
                                   gridspec_kw={'height_ratios': [3, 1]})
  ax.plot([0, 1], [0, 1], 'k--', lw=1, label='perfect calibration')
  edges = np.linspace(0.0, 1.0, num_bins + 1)
  width = 1.0 / num_bins / (len(curves) + 1)
  stored = []
  for i, (label, logits, labels, temperature) in enumerate(curves):
    bins = metrics.reliability_bins(logits, labels, num_bins, temperature)
    dense, sparse = bins['count'] >= min_count, (bins['count'] > 0) & (bins['count'] < min_count)
    ece = metrics.ece(logits, labels, num_bins, temperature)
    line, = ax.plot(bins['confidence'][dense], bins['accuracy'][dense], 'o-', ms=3,
                    label=f'{label} (ECE {ece:.3f})')
    ax.plot(bins['confidence'][sparse], bins['accuracy'][sparse], 'o', ms=4, mfc='none',
            color=line.get_color())
    counts.bar(edges[:-1] + (i + 0.5) * width, bins['count'], width, color=line.get_color())
    stored.append({'label': label, 'temperature': temperature, 'ece': ece,
                   **{k: [None if np.isnan(v) else float(v) for v in bins[k]]
                      for k in ('count', 'accuracy', 'confidence')}})
  ax.set_ylabel('accuracy')
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1)
  ax.set_title(title, fontsize=9)
  counts.set_yscale('log')
  counts.set_ylabel('examples per bin')
  counts.set_xlabel('confidence (max softmax probability)')
  counts.axhline(min_count, color='gray', ls=':', lw=0.8)
  fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc='lower center', ncol=2,
             title=f'hollow: bins of fewer than {min_count} examples (dotted line below)',
             title_fontsize=7)
  fig.tight_layout(rect=(0, 0.06 + 0.025 * ((len(curves) + 2) // 2), 1, 1))
  run_files.save_figure(fig, path_stem)
  run_files.write_json(f'{path_stem}.json', {'num_bins': num_bins, 'curves': stored})
  return fig
