"""The paper's Figure 1 layout: one panel per (label smoothing, split), points coloured by class."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from data.run_directory import run_files

DEFAULT_COLORS = ('tab:blue', 'tab:orange', 'tab:green')


def projection_figure(panels, classes, class_names, path_stem, colors=DEFAULT_COLORS, title=''):
  """panels: [(panel title, points [N, 2], labels [N])]; writes path_stem.png and .pdf."""
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
  for ax, (panel_title, points, labels) in zip(np.atleast_1d(axes), panels):
    for c, name, color in zip(classes, class_names, colors):
      sel = labels == c
      ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.6, color=color, label=name)
    ax.set_title(panel_title, fontsize=9)
    ax.set_xlabel('plane axis 1')
    ax.set_ylabel('plane axis 2')
    ax.set_aspect('equal', adjustable='datalim')
  np.atleast_1d(axes)[0].legend(fontsize=7, markerscale=2)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  run_files.save_figure(fig, path_stem)
  return fig
