"""Paper Figure 5: accuracy against the smoothness index gamma, teachers and students."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from models import run_files

GROUPS = {  # group -> (legend, panel, style)
    'teacher': ('teacher (ResNet-56), trained with alpha', 0, 'o-'),
    'student_baseline': ('student (AlexNet), trained with alpha', None, 's--'),
    'student_hard_teacher': ('student distilled from hard-target teacher at T', 1, '^-'),
    'student_smoothed_teacher': ('student distilled from smoothed teacher, T=1', 1, 'v-'),
}


def summarize(points, split):
  """{group: [(x, mean gamma, mean accuracy %, std, n)]} averaged over seeds per setting."""
  out = {}
  for group in GROUPS:
    settings = sorted({p['setting'] for p in points if p['group'] == group})
    rows = []
    for setting in settings:
      sel = [p for p in points if p['group'] == group and p['setting'] == setting]
      acc = np.array([100 * p['accuracy'][split] for p in sel])
      rows.append((setting, float(np.mean([p['gamma'] for p in sel])), float(acc.mean()),
                   float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, len(acc)))
    out[group] = sorted(rows, key=lambda r: r[1])
  return out


def distillation_figure(points, path_stem, split='validation'):
  """Left: teacher and student baseline vs gamma; right: distilled students and the baseline."""
  summary = summarize(points, split)
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for group, (legend, panel, style) in GROUPS.items():
    rows = summary[group]
    if not rows:
      continue
    for ax in (axes if panel is None else [axes[panel]]):
      ax.errorbar([r[1] for r in rows], [r[2] for r in rows], yerr=[r[3] for r in rows],
                  fmt=style, ms=4, capsize=2, label=legend)
  for ax, title in zip(axes, ('teacher and student trained with label smoothing',
                              'students distilled')):
    ax.set_xlabel('smoothness index gamma')
    ax.set_ylabel(f'{split} accuracy (%)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
  fig.tight_layout()
  run_files.save_figure(fig, path_stem)
  return fig, summary


def mutual_information_figure(curves, num_examples, path_stem, title=''):
  """Paper Figure 6: I_hat against training step, one curve per run, log 2 and log N marked.

  curves: [(label, steps, values)].
  """
  fig, ax = plt.subplots(figsize=(5.5, 4))
  for label, steps, values in curves:
    ax.plot(steps, values, 'o-', ms=2.5, lw=1, label=label)
  for level, name in ((np.log(2.0), 'log 2 (two clusters)'),
                      (np.log(num_examples), f'log N (N = {num_examples})')):
    ax.axhline(level, color='gray', ls='--', lw=0.8)
    ax.annotate(name, (0.01, level), xycoords=('axes fraction', 'data'), fontsize=7,
                va='bottom', color='gray')
  ax.set_xlabel('training step')
  ax.set_ylabel('mutual information (nats)')
  ax.set_ylim(bottom=min(0.0, *(min(v) for _, _, v in curves)) - 0.05,
              top=np.log(num_examples) * 1.05)
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7, loc='center right')
  fig.tight_layout()
  run_files.save_figure(fig, path_stem)
  return fig
