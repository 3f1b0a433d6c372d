"""Paper Figures 5 and 6: accuracy against the smoothness index gamma (teachers and students) and
the mutual information between input and logit over training."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from data.run_directory import run_files

GROUPS = {  # group -> (legend, style)
    'teacher': ('teacher (ResNet-56) trained with alpha', 'o-'),
    'student_baseline': ('student (AlexNet) trained with alpha', 's--'),
    'student_hard_teacher': ('student distilled from the hard-target teacher at T', '^-'),
    'student_smoothed_teacher': ('student distilled from a smoothed teacher, T = 1', 'v-'),
    'student_matched_temperature': ('student of the hard-target teacher at T* (a smoothed '
                                    "teacher's gamma)", 'D'),
}


def point_label(group, row):
  """What sets a point: the temperature of hard-teacher students, else alpha (T*: the smoothed
  teacher's alpha whose gamma it matches, and T* itself)."""
  if group == 'student_hard_teacher':
    return f'T={row["setting"]:g}'
  if group == 'student_matched_temperature':
    return f'T*={row["temperature"]:.2f} (alpha {row["setting"]:g})'
  return f'alpha={row["setting"]:g}'


def summarize(points, split):
  """{group: [{setting, gamma, mean, min, max, n}]} over seeds per setting (accuracy in %),
  ordered by gamma."""
  out = {}
  for group in GROUPS:
    rows = []
    for setting in sorted({p['setting'] for p in points if p['group'] == group}):
      sel = [p for p in points if p['group'] == group and p['setting'] == setting]
      acc = np.array([100 * p['accuracy'][split] for p in sel])
      rows.append({'setting': setting, 'gamma': float(np.mean([p['gamma'] for p in sel])),
                   'mean': float(acc.mean()), 'min': float(acc.min()),
                   'max': float(acc.max()), 'n': len(acc)})
      if 'temperature' in sel[0] and group == 'student_matched_temperature':
        rows[-1]['temperature'] = sel[0]['temperature']
    out[group] = sorted(rows, key=lambda r: r['gamma'])
  return out


def distillation_figure(points, path_stem, split='validation'):
  """The paper's Figure 5: the four curves against gamma, mean over seeds with min-max bars
  (a point of one seed is drawn hollow), each point labelled with its T or alpha; the legend
  below the axes."""
  summary = summarize(points, split)
  fig, ax = plt.subplots(figsize=(7, 6))
  for group, (legend, style) in GROUPS.items():
    rows = summary[group]
    if not rows:
      continue
    x, mean = [r['gamma'] for r in rows], [r['mean'] for r in rows]
    line, = ax.plot(x, mean, style, ms=5, lw=1.2, label=legend)
    ax.errorbar(x, mean, yerr=[[r['mean'] - r['min'] for r in rows],
                               [r['max'] - r['mean'] for r in rows]],
                fmt='none', ecolor=line.get_color(), capsize=3, lw=1)
    single = [r for r in rows if r['n'] == 1]
    ax.plot([r['gamma'] for r in single], [r['mean'] for r in single], style[0], ms=5,
            mfc='white', color=line.get_color())
    for r in rows:
      ax.annotate(point_label(group, r), (r['gamma'], r['mean']), textcoords='offset points',
                  xytext=(4, 3), fontsize=6, color=line.get_color())
  ax.set_xlabel('smoothness index gamma')
  ax.set_ylabel(f'{split} accuracy (%)')
  seeds = sorted({r['n'] for rows in summary.values() for r in rows})
  ax.set_title(f'CIFAR-10 distillation; mean and min-max over seeds (seeds per point: '
               f'{", ".join(map(str, seeds))}; hollow: one seed)', fontsize=8)
  handles, labels = ax.get_legend_handles_labels()
  fig.legend(handles, labels, fontsize=7, loc='lower center')
  fig.tight_layout(rect=(0, 0.035 * len(labels) + 0.02, 1, 1))
  run_files.save_figure(fig, path_stem)
  return fig, summary


def mutual_information_figure(curves, num_examples, path_stem, title='', drops=()):
  """Paper Figure 6: I_hat against training step, one curve per run, log 2 and log N marked,
  and the learning-rate drops (`drops`: steps) as dotted vertical lines.

  curves: [(label, steps, values)].
  """
  fig, ax = plt.subplots(figsize=(5.5, 4))
  for label, steps, values in curves:
    ax.plot(steps, values, 'o-', ms=2.5, lw=1, label=label)
  for i, step in enumerate(drops):
    ax.axvline(step, color='gray', ls=':', lw=0.8,
               label='learning-rate drop' if i == 0 else None)
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
