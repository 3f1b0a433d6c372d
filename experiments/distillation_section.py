"""The CIFAR-10 distillation section (paper Figure 5): the run plan, its timing, the seed
contrasts and the paper's findings checked from the points.

The grid: ResNet-56 teachers trained with each alpha; AlexNet students trained with each alpha
(no distillation); students distilled (beta = 1, student T = 1) from the hard-target teacher at
each temperature; students of each smoothed teacher at T = 1. Contrast seeds then repeat three
points at one matched smoothness index gamma, chosen from the first seed's results: the best
temperature-distilled student, the student baseline nearest its gamma, and the student of the
smoothed teacher nearest it; they carry the paired verdicts.
"""
import dataclasses
import os
from typing import Optional

import numpy as np

from data import run_files
from distillation import seeds as seed_stats
from models import recipes, training

GROUP_DIRS = {
    'teacher': 'teachers',
    'student_baseline': 'students_baseline',
    'student_hard_teacher': 'students_hard_teacher',
    'student_smoothed_teacher': 'students_smoothed_teacher',
    'student_on_the_fly': 'students_on_the_fly',  # the cached-outputs check
}
# The groups of the three matched points (the contrasts).
MATCHED_GROUPS = ('student_hard_teacher', 'student_baseline', 'student_smoothed_teacher')


@dataclasses.dataclass
class PlannedRun:
  group: str
  setting: float  # alpha, or the distillation temperature of hard-teacher students
  seed: int
  config: recipes.TrainConfig
  run_dir: str

  @property
  def name(self):
    return f'{self.group} {self.setting:g} seed {self.seed}'


@dataclasses.dataclass
class Grid:
  """Everything that names a run of the section; `base` holds the shared recipe overrides."""
  output_dir: str
  alphas: list
  temperatures: list
  seeds: list
  teacher_seeds: list
  base: dict
  teacher_steps: Optional[int] = None
  student_steps: Optional[int] = None
  teacher_outputs: str = 'on_the_fly'
  reuse: dict = dataclasses.field(default_factory=dict)  # config json -> finished run dir

  def teacher_seed(self, seed):
    return seed if seed in self.teacher_seeds else self.teacher_seeds[0]

  def run(self, group, setting, seed):
    """The PlannedRun of one point (a finished --reuse_dirs run with its config replaces it)."""
    teacher = lambda alpha: self.run('teacher', alpha, self.teacher_seed(seed)).run_dir
    # Students are AlexNets: a teacher-only setting in `base` (resnet_blocks) is not theirs.
    student = dict(model='alexnet', train_steps=self.student_steps, seed=seed,
                   resnet_blocks=recipes.TrainConfig.resnet_blocks)
    fields = {
        'teacher': lambda: dict(model='resnet56', train_steps=self.teacher_steps, seed=seed,
                                label_smoothing=setting),
        'student_baseline': lambda: dict(student, label_smoothing=setting),
        'student_hard_teacher': lambda: dict(student, teacher_dir=teacher(0.0),
                                             distill_temperature=setting,
                                             teacher_outputs=self.teacher_outputs),
        'student_smoothed_teacher': lambda: dict(student, teacher_dir=teacher(setting),
                                                 teacher_outputs=self.teacher_outputs),
        'student_on_the_fly': lambda: dict(student, teacher_dir=teacher(0.0),
                                           distill_temperature=setting,
                                           teacher_outputs='on_the_fly'),
    }[group]()
    model = fields.pop('model')
    config = recipes.recipe(model, **dict(self.base, **fields))
    name = (f'T_{setting:g}_seed_{seed}' if group in ('student_hard_teacher', 'student_on_the_fly')
            else f'alpha_{setting:g}_seed_{seed}')
    run_dir = self.reuse.get(_key(config), os.path.join(self.output_dir, GROUP_DIRS[group], name))
    return PlannedRun(group, setting, seed, config, run_dir)

  def grid_runs(self):
    """Teachers first (every later run needs them), then the students of each seed."""
    runs = [self.run('teacher', a, s) for s in self.teacher_seeds for a in self.alphas]
    for seed in self.seeds:
      runs += [self.run('student_baseline', a, seed) for a in self.alphas]
      runs += [self.run('student_hard_teacher', t, seed) for t in self.temperatures]
      runs += [self.run('student_smoothed_teacher', a, seed) for a in self.alphas if a > 0]
    return runs


def _key(config):
  return repr(sorted(training.config_to_json(config).items()))


def reuse_index(run_dirs):
  """{config key: run dir} of finished runs offered for reuse (--reuse_dirs)."""
  index = {}
  for run_dir in run_dirs:
    training.finished_results(run_dir)  # exists and finished, or one line saying what is not
    config, _ = training.read_run_config(run_dir)
    index[_key(config)] = run_dir
  return index


def matched_contrast(points, split='validation'):
  """(hard-teacher T, baseline alpha, smoothed-teacher alpha) at one gamma, from the first
  seed: the best temperature-distilled student, and the baseline and the smoothed teacher's
  student whose gamma is nearest its own."""
  first = min(p['seed'] for p in points)
  of = lambda group: [p for p in points if p['group'] == group and p['seed'] == first]
  best = max(of('student_hard_teacher'), key=lambda p: p['accuracy'][split])
  nearest = lambda group: min(of(group), key=lambda p: abs(p['gamma'] - best['gamma']))
  return (best['setting'], nearest('student_baseline')['setting'],
          nearest('student_smoothed_teacher')['setting'])


def contrast_runs(grid, points, contrast_seeds, split='validation'):
  """The three matched points again, for each contrast seed (teachers are not retrained)."""
  if not contrast_seeds or not all(any(p['group'] == g for p in points) for g in MATCHED_GROUPS):
    return []
  t, alpha_baseline, alpha_smoothed = matched_contrast(points, split)
  return [run for seed in contrast_seeds
          for run in (grid.run('student_hard_teacher', t, seed),
                      grid.run('student_baseline', alpha_baseline, seed),
                      grid.run('student_smoothed_teacher', alpha_smoothed, seed))]


def _progress(run):
  """(finished, step of the latest checkpoint), read from the run directory."""
  if run_files.gfile.exists(os.path.join(run.run_dir, 'results.json')):
    return True, None
  return False, run_files.latest_checkpoint_step(run.run_dir)


def status(run):
  """'finished' / 'resume from step N' / 'train'."""
  finished, step = _progress(run)
  return 'finished' if finished else f'resume from step {step}' if step else 'train'


def remaining_steps(run, num_train):
  """Steps still to train (0 when finished)."""
  finished, step = _progress(run)
  return 0 if finished else recipes.total_steps(run.config, num_train) - step


def estimated_seconds(run, num_train, step_seconds):
  """Seconds left for `run` at the measured step times ({'resnet56', 'alexnet',
  'teacher_forward'}); a student with the teacher on the fly adds a teacher forward pass."""
  steps = remaining_steps(run, num_train)
  if not steps:
    return 0.0
  per_step = step_seconds[run.config.model]
  if run.config.teacher_dir and run.config.teacher_outputs == 'on_the_fly':
    per_step += step_seconds['teacher_forward']
  return steps * per_step


def seconds_queued_after(runs, num_train, step_seconds, later=0.0):
  """For each run, the estimated seconds of the sweep after it (`later`: the contrast runs);
  its progress lines add their own ETA to give the sweep ETA."""
  left = [estimated_seconds(r, num_train, step_seconds) for r in runs]
  return [sum(left[i + 1:]) + later for i in range(len(runs))]


def contrast_seconds(grid, num_train, step_seconds, count):
  """Estimated seconds of `count` contrast runs (students of the grid's schedule)."""
  student = grid.run('student_baseline', 0.0, grid.seeds[0]).config
  return count * step_seconds['alexnet'] * recipes.total_steps(student, num_train)


def plan_lines(runs, num_train, step_seconds, contrasts=(0, (), 0.0)):
  """The plan printed before the section starts: every run in order, its state, its estimate;
  contrasts = (number of contrast runs, their seeds, their estimated seconds)."""
  lines, total = ['plan (estimates from the step times measured now: ' + ', '.join(
      f'{k} {v * 1000:.0f} ms' for k, v in sorted(step_seconds.items())) + '):'], 0.0
  for i, run in enumerate(runs):
    seconds = estimated_seconds(run, num_train, step_seconds)
    total += seconds
    own = os.path.join(GROUP_DIRS[run.group], os.path.basename(run.run_dir))
    reused = '' if run.run_dir.endswith(own) else f' (reused: {run.run_dir})'
    lines.append(f'  [{i + 1}/{len(runs)}] {run.name:38s} {run.config.model:8s} '
                 f'{recipes.total_steps(run.config, num_train):7d} steps  {status(run):22s} '
                 f'{seconds / 60:7.1f} min{reused}')
  count, seeds, seconds = contrasts
  if count:
    total += seconds
    lines.append(f'  then {count} contrast runs (3 matched points x seeds '
                 f'{",".join(map(str, seeds))}, chosen from the first seed), about '
                 f'{seconds / 60:.0f} min')
  lines.append(f'total: about {total / 3600:.1f} h on this machine')
  return lines


def point(run, results, output_dir):
  """One point of Figure 5: where it lies (gamma) and its accuracy on each split."""
  gamma = results.get('teacher_smoothness_index', run.config.label_smoothing)
  return {'group': run.group, 'setting': run.setting, 'seed': run.seed,
          'run_dir': run_files.relative_to(run.run_dir, output_dir), 'gamma': gamma,
          'teacher_outputs': results.get('teacher_outputs'),
          'accuracy': {s: m['accuracy'] for s, m in results['metrics'].items()}}


def finished_point(run, output_dir):
  """The point of a finished run, None while it is not finished (read only; a directory that
  holds another config is refused)."""
  if status(run) != 'finished':
    return None
  training.check_same_run(run.run_dir, run.config)
  return point(run, training.finished_results(run.run_dir), output_dir)


def _baseline_at(points, seed, gamma, split):
  """Seed `seed`'s student baseline accuracy interpolated at `gamma` (None outside it)."""
  rows = sorted((p['gamma'], p['accuracy'][split]) for p in points
                if p['group'] == 'student_baseline' and p['seed'] == seed)
  if not rows or not rows[0][0] <= gamma <= rows[-1][0]:
    return None
  return float(np.interp(gamma, *zip(*rows)))


def findings(points, split='validation'):
  """The paper's three findings, each checked from the points: single-seed observations over
  the grid, and paired verdicts over the contrast seeds."""
  first = min(p['seed'] for p in points)
  acc = lambda p: 100.0 * p['accuracy'][split]
  teachers = sorted((p['setting'], acc(p)) for p in points
                    if p['group'] == 'teacher' and p['seed'] == first)
  out = {'split': split, 'teacher_accuracy': teachers}
  if teachers:
    base = teachers[0][1]
    better = [a for a, v in teachers[1:] if a <= 0.6 + 1e-9 and v > base]
    out['teacher_improves'] = {
        'text': 'the teacher improves with label smoothing up to alpha = 0.6',
        'observed': ', '.join(f'alpha {a:g}: {v - base:+.2f}' for a, v in teachers[1:]),
        'verdict': ('holds (one seed)' if better and len(better) == len(
            [a for a, _ in teachers[1:] if a <= 0.6 + 1e-9]) else 'does not hold (one seed)')}
  hard = [p for p in points if p['group'] == 'student_hard_teacher' and p['seed'] == first]
  above = [(p['setting'], acc(p) - 100.0 * b) for p in hard
           if (b := _baseline_at(points, first, p['gamma'], split)) is not None]
  if above:
    out['every_temperature_beats_baseline'] = {
        'text': 'every temperature-distilled student beats the student baseline at its gamma',
        'observed': ', '.join(f'T {t:g}: {d:+.2f}' for t, d in above),
        'verdict': (f'holds for {sum(d > 0 for _, d in above)} of {len(above)} temperatures '
                    '(one seed; baseline interpolated in gamma)')}
  out['paired'] = paired_contrasts(points, split)
  return out


def paired_contrasts(points, split='validation'):
  """Paired differences over the seeds that hold all three matched points (Table 4's test)."""
  if not all(any(p['group'] == g for p in points) for g in MATCHED_GROUPS):
    return None  # a partial sweep
  t, alpha_baseline, alpha_smoothed = matched_contrast(points, split)
  keys = {('student_hard_teacher', t): f'hard teacher T={t:g}',
          ('student_baseline', alpha_baseline): f'baseline alpha={alpha_baseline:g}',
          ('student_smoothed_teacher', alpha_smoothed):
              f'smoothed teacher alpha={alpha_smoothed:g}'}
  by_seed = {}
  for p in points:
    key = keys.get((p['group'], p['setting']))
    if key:
      by_seed.setdefault(p['seed'], {})[key] = 100.0 * p['accuracy'][split]
  hard, baseline, smoothed = keys.values()
  claims = [
      dict(first=hard, second=baseline, expected_sign=1,
           text='the temperature-distilled student beats the student baseline'),
      dict(first=smoothed, second=hard, expected_sign=-1,
           text="the smoothed teacher's student is worse than the temperature-distilled one"),
      dict(first=smoothed, second=baseline, expected_sign=1,
           text="the smoothed teacher's student beats the student baseline (the paper: it does "
                "not; 'no better, sometimes worse')"),
  ]
  return seed_stats.summarize_seeds(by_seed, claims)


def on_the_fly_check(points, split='validation'):
  """What the cached teacher outputs change: the on-the-fly student minus the cached one."""
  fly = [p for p in points if p['group'] == 'student_on_the_fly']
  rows = []
  for p in fly:
    cached = [q for q in points if q['group'] == 'student_hard_teacher'
              and q['setting'] == p['setting'] and q['seed'] == p['seed']]
    if cached:
      rows.append({'temperature': p['setting'], 'seed': p['seed'],
                   'on_the_fly': 100.0 * p['accuracy'][split],
                   'cached': 100.0 * cached[0]['accuracy'][split]})
  return rows
