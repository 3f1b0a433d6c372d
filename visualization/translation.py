"""Paper Figure 4: BLEU, ECE and NLL of the Transformer against the softmax temperature."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from data.run_directory import run_files  # pylint: disable=g-import-not-at-top


def temperature_figure(runs, path_stem, title=''):
  """runs: [(label, temperatures, bleu, ece, nll)]; BLEU and ECE on the left axes, NLL right."""
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  ece_axis = left.twinx()
  for i, (label, temperatures, bleu, ece, nll) in enumerate(runs):
    color = f'C{i}'
    left.plot(temperatures, bleu, 'o-', color=color, ms=3, label=f'BLEU, {label}')
    ece_axis.plot(temperatures, ece, 's--', color=color, ms=3, label=f'ECE, {label}')
    right.plot(temperatures, nll, 'o-', color=color, ms=3, label=label)
  left.set_xlabel('temperature')
  left.set_ylabel('BLEU (uncased, intl)')
  ece_axis.set_ylabel('ECE (next token)')
  handles = left.get_legend_handles_labels()
  extra = ece_axis.get_legend_handles_labels()
  left.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc='upper center',
              bbox_to_anchor=(0.5, -0.15), ncol=2)
  right.set_xlabel('temperature')
  right.set_ylabel('NLL per token (nats)')
  right.legend(fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  run_files.save_figure(fig, path_stem)
  return fig
