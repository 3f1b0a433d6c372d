"""Reliability diagrams (paper Figure 2, left): accuracy per confidence bin, with the diagonal."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from calibration import metrics
from data import run_files


def plot_reliability(curves, path_stem, title='', num_bins=metrics.NUM_BINS):
  """curves: [(label, logits, labels, temperature)]. Writes path_stem.{png,pdf,json}.

  Each curve plots (mean confidence, accuracy) of every non-empty bin; the JSON holds all
  `num_bins` bins of every curve, empty ones as null.
  """
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  ax.plot([0, 1], [0, 1], 'k--', lw=1, label='perfect calibration')
  stored = []
  for label, logits, labels, temperature in curves:
    bins = metrics.reliability_bins(logits, labels, num_bins, temperature)
    filled = bins['count'] > 0
    ece = metrics.ece(logits, labels, num_bins, temperature)
    ax.plot(bins['confidence'][filled], bins['accuracy'][filled], 'o-', ms=3,
            label=f'{label} (ECE {ece:.3f})')
    stored.append({'label': label, 'temperature': temperature, 'ece': ece,
                   **{k: [None if np.isnan(v) else float(v) for v in bins[k]]
                      for k in ('count', 'accuracy', 'confidence')}})
  ax.set_xlabel('confidence (max softmax probability)')
  ax.set_ylabel('accuracy')
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1)
  ax.set_title(title)
  ax.legend(fontsize=7, loc='upper left')
  fig.tight_layout()
  run_files.save_figure(fig, path_stem)
  run_files.write_json(f'{path_stem}.json', {'num_bins': num_bins, 'curves': stored})
  return fig
