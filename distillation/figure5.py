"""The CIFAR-10 distillation section (paper Figure 5): the run plan, its timing, the seed
contrasts and the paper's findings checked from the points.

The grid: ResNet-56 teachers trained with each alpha; AlexNet students trained with each alpha
(no distillation); students distilled (beta = 1, student T = 1) from the hard-target teacher at
each temperature; students of each smoothed teacher at T = 1; and, once the teachers have
finished, for each smoothed teacher a student of the hard teacher at the temperature T* whose
gamma equals the smoothed teacher's (solved on the teachers' training logits), so that Figure 5's
comparison is made at equal gamma by construction. Contrast seeds then repeat, paired by seed,
the key contrast (the best temperature-distilled student against the alpha 0 baseline, chosen
from the first seed) and every smoothed teacher's student beside its T* student.
"""
import dataclasses
import os
from typing import Optional

import numpy as np

from data.run_directory import checkpoints, run_files, section_results
from calibration import verdicts
from distillation import smoothness
from distillation.teacher import recorded_train_logits
from models import recipes, run_records

GROUP_DIRS = {
    'teacher': 'teachers',
    'student_baseline': 'students_baseline',
    'student_hard_teacher': 'students_hard_teacher',
    'student_smoothed_teacher': 'students_smoothed_teacher',
    'student_matched_temperature': 'students_matched_temperature',  # T*: a smoothed one's gamma
    'student_on_the_fly': 'students_on_the_fly',  # the cached-outputs check
}
# The groups the key contrast needs (the best temperature against the alpha 0 baseline).
RESULT = section_results.Kind('distillation_cifar10', 'points.json', ('figure5.png',))
KEY_GROUPS = ('student_hard_teacher', 'student_baseline')


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
  matched: dict = dataclasses.field(default_factory=dict)  # smoothed alpha -> T* (None: none)

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
        'student_matched_temperature': lambda: dict(student, teacher_dir=teacher(0.0),
                                                    distill_temperature=self.matched[setting],
                                                    teacher_outputs=self.teacher_outputs),
        'student_on_the_fly': lambda: dict(student, teacher_dir=teacher(0.0),
                                           distill_temperature=setting,
                                           teacher_outputs='on_the_fly'),
    }[group]()
    model = fields.pop('model')
    config = recipes.recipe(model, **dict(self.base, **fields))
    name = (f'T_{setting:g}_seed_{seed}' if group in ('student_hard_teacher', 'student_on_the_fly')
            else f'alpha_{setting:g}_seed_{seed}')  # matched: named by the smoothed alpha
    run_dir = self.reuse.get(_key(config), os.path.join(self.output_dir, GROUP_DIRS[group], name))
    return PlannedRun(group, setting, seed, config, run_dir)

  def teachers(self):
    return [self.run('teacher', a, s) for s in self.teacher_seeds for a in self.alphas]

  def grid_runs(self):
    """Teachers first (every later run needs them), then the students of each seed; T*
    students only for the smoothed teachers whose T* is solved (matched_temperatures)."""
    runs = self.teachers()
    for seed in self.seeds:
      runs += [self.run('student_baseline', a, seed) for a in self.alphas]
      runs += [self.run('student_hard_teacher', t, seed) for t in self.temperatures]
      runs += [self.run('student_smoothed_teacher', a, seed) for a in self.alphas if a > 0]
      runs += [self.run('student_matched_temperature', a, seed) for a in self.alphas
               if self.matched.get(a)]
    return runs

  def unsolved(self):
    """Smoothed alphas whose T* students cannot be planned yet (teachers unfinished)."""
    return [a for a in self.alphas if a > 0 and a not in self.matched]


def matched_temperatures(grid, data_dir=None):
  """The grid with T* solved for every smoothed teacher of the first teacher seed that has
  finished beside the hard one: the hard teacher's temperature whose gamma on its training
  logits equals the smoothed teacher's gamma at T = 1 (rounded to 4 decimals, so that the
  planned config reads back the same on any machine)."""
  seed = grid.teacher_seeds[0]
  hard = grid.run('teacher', 0.0, seed)
  if status(hard) != 'finished':
    return grid
  logits, labels = recorded_train_logits(hard.run_dir, data_dir)
  matched = dict(grid.matched)
  for alpha in grid.unsolved():
    smoothed = grid.run('teacher', alpha, seed)
    if status(smoothed) == 'finished':
      gamma = smoothness.smoothness_index(*recorded_train_logits(smoothed.run_dir, data_dir))
      try:
        matched[alpha] = round(smoothness.matched_temperature(logits, labels, gamma), 4)
      except ValueError as e:  # e.g. barely trained teachers: no T* student for this alpha
        print(f'note: no T* for the alpha {alpha:g} teacher: {e}', flush=True)
        matched[alpha] = None
  return dataclasses.replace(grid, matched=matched)


def _key(config):
  return repr(sorted(run_records.config_to_json(config).items()))


def reuse_index(run_dirs):
  """{config key: run dir} of finished runs offered for reuse (--reuse_dirs)."""
  index = {}
  for run_dir in run_dirs:
    run_records.finished_results(run_dir)  # exists and finished, or one line saying what is not
    config, _ = run_records.read_run_config(run_dir)
    index[_key(config)] = run_dir
  return index


def best_temperature(points, split='validation'):
  """The temperature of the first seed's best temperature-distilled student (the key
  contrast's)."""
  first = min(p['seed'] for p in points)
  return max((p for p in points if p['group'] == 'student_hard_teacher' and p['seed'] == first),
             key=lambda p: p['accuracy'][split])['setting']


def contrast_runs(grid, points, contrast_seeds, split='validation'):
  """Per contrast seed: the key contrast (best T, alpha 0 baseline) and every smoothed
  teacher's student beside its T* student (teachers are not retrained)."""
  if not contrast_seeds or not all(any(p['group'] == g for p in points) for g in KEY_GROUPS):
    return []
  t = best_temperature(points, split)
  runs = []
  for seed in contrast_seeds:
    runs += [grid.run('student_hard_teacher', t, seed), grid.run('student_baseline', 0.0, seed)]
    for alpha in (a for a, t in grid.matched.items() if t):
      runs += [grid.run('student_smoothed_teacher', alpha, seed),
               grid.run('student_matched_temperature', alpha, seed)]
  return runs


def contrasts_per_seed(grid):
  """Runs each contrast seed adds (the key contrast's two, two per smoothed teacher)."""
  return 2 + 2 * len([a for a in grid.alphas if a > 0])


def contrasts_to_train(grid, contrast_seeds):
  """The contrast runs still to train before the grid names them all: the best T's and the T*
  students, and the baselines and smoothed teachers' students (known already) that have not
  finished here or in a reused run."""
  smoothed = [a for a in grid.alphas if a > 0]
  known = [grid.run('student_baseline', 0.0, seed) for seed in contrast_seeds]
  known += [grid.run('student_smoothed_teacher', a, seed) for seed in contrast_seeds
            for a in smoothed]
  return (len(contrast_seeds) * contrasts_per_seed(grid) -
          sum(status(run) == 'finished' for run in known))


def _progress(run):
  """(finished, step of the latest checkpoint), read from the run directory."""
  if run_files.gfile.exists(os.path.join(run.run_dir, 'results.json')):
    return True, None
  return False, checkpoints.latest_checkpoint_step(run.run_dir)


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


def plan_lines(runs, num_train, step_seconds, later=()):
  """The plan printed before the section starts: every run in order, its state, its estimate;
  `later`: (what, estimated seconds) of the runs that can only be named once others finish."""
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
  for what, seconds in later:
    total += seconds
    lines.append(f'  then {what}, about {seconds / 60:.0f} min')
  lines.append(f'total: about {total / 3600:.1f} h on this machine')
  return lines


def later_runs(grid, num_train, step_seconds, contrast_seeds, contrasts_known):
  """The plan's (what, seconds) of the T* students not solved yet and the contrast runs not
  chosen yet."""
  later = []
  if grid.unsolved():
    count = len(grid.seeds) * len(grid.unsolved())
    later.append((f'{count} T* students (the hard teacher at the gamma of smoothed teachers '
                  f'{",".join(f"{a:g}" for a in grid.unsolved())}; T* solved once the teachers '
                  'finish)', contrast_seconds(grid, num_train, step_seconds, count)))
  count = contrasts_to_train(grid, contrast_seeds)
  if count and not contrasts_known:
    later.append((f'{count} contrast runs still to train (of '
                  f'{len(contrast_seeds) * contrasts_per_seed(grid)}: the best T and the alpha 0 '
                  'baseline, each smoothed teacher\'s student and its T* student, x seeds '
                  f'{",".join(map(str, contrast_seeds))})',
                  contrast_seconds(grid, num_train, step_seconds, count)))
  return later


def point(run, results, output_dir):
  """One point of Figure 5: where it lies (gamma) and its accuracy on each split."""
  gamma = results.get('teacher_smoothness_index', run.config.label_smoothing)
  out = {'group': run.group, 'setting': run.setting, 'seed': run.seed,
         'run_dir': run_files.relative_to(run.run_dir, output_dir), 'gamma': gamma,
         'teacher_outputs': results.get('teacher_outputs'),
         'accuracy': {s: m['accuracy'] for s, m in results['metrics'].items()},
         'num_examples': {s: m['num_examples'] for s, m in results['metrics'].items()}}
  if run.config.teacher_dir:
    out['temperature'] = run.config.distill_temperature
  return out


def _train_steps(p, folder):
  """Training steps of a point's run, from its config.json (`folder`: the result's)."""
  config, _ = run_records.read_run_config(run_files.resolve(p['run_dir'], folder))
  return config.train_steps


def teacher_steps(result, folder):
  """Training steps of a section result's hard-target teacher (0 before it has finished), read
  from its run's config.json: the report leads with the longest teacher schedule."""
  hard = [p for p in result['points'] if p['group'] == 'teacher' and p['setting'] == 0.0]
  return _train_steps(hard[0], folder) if hard else 0


def key_contrast_summary(result, folder):
  """One result's part of the cause analysis, which compares results that differ in one
  setting: its key contrast (paired_contrasts' claim; None before it has one), the settings
  that tell results apart (the hard teacher's steps and accuracy, the students' steps and
  teacher outputs) and its on-the-fly students against their baselines (on_the_fly_check)."""
  points, split = result['points'], result['split']
  paired = paired_contrasts(points, split)
  if not paired:
    return None
  first = min(p['seed'] for p in points)
  t = best_temperature(points, split)
  student = next(p for p in points if (p['group'], p['setting'], p['seed']) ==
                 ('student_hard_teacher', t, first))
  hard = [p for p in points if p['group'] == 'teacher' and p['setting'] == 0.0]
  return {'temperature': t, 'claim': paired['claims'][0],
          'teacher_steps': _train_steps(hard[0], folder) if hard else None,
          'teacher_accuracy': 100.0 * hard[0]['accuracy'][split] if hard else None,
          'student_steps': _train_steps(student, folder),
          'teacher_outputs': student['teacher_outputs'],
          'on_the_fly': [row for row in on_the_fly_check(points, split) if 'baseline' in row]}


def finished_point(run, output_dir):
  """The point of a finished run, None while it is not finished (read only; a directory that
  holds another config is refused)."""
  if status(run) != 'finished':
    return None
  run_records.check_same_run(run.run_dir, run.config)
  return point(run, run_records.finished_results(run.run_dir), output_dir)


def _num_examples(p, split):
  """The examples behind a point's accuracy (recorded with the point; 10,000 in older points,
  the size of every CIFAR-10 evaluation split this section uses)."""
  return p.get('num_examples', {}).get(split, 10_000)


def _one_seed(first, second, num_examples, expected_sign):
  """first - second (accuracies as fractions, one run each) in points, its binomial standard
  error in points and the sampling verdict."""
  d = 100.0 * (first - second)
  se = 100.0 * verdicts.accuracy_difference_se(first, second, num_examples)
  return d, se, verdicts.sampling_verdict(d, se, expected_sign)


def _verdict_kind(verdict):
  """A verdict without its precision ('not observable at this precision (+-1.12, 95%)' ->
  'not observable at this precision'): what two verdicts are compared by."""
  return verdict.split(' (')[0]


def _teacher_improves(points, first, split):
  """Each smoothed teacher (alpha <= 0.6) against the hard one, one seed: a sampling verdict."""
  teachers = {p['setting']: p for p in points if p['group'] == 'teacher' and p['seed'] == first}
  if 0.0 not in teachers or len(teachers) < 2:
    return None
  hard, rows = teachers[0.0], []
  for alpha in sorted(a for a in teachers if 0 < a <= 0.6 + 1e-9):
    rows.append((alpha, *_one_seed(teachers[alpha]['accuracy'][split], hard['accuracy'][split],
                                   _num_examples(hard, split), expected_sign=1)))
  kinds = [_verdict_kind(v) for *_, v in rows]
  return {'text': 'the teacher improves with label smoothing up to alpha = 0.6',
          'test': 'each alpha against alpha 0, one seed: beyond 1.96 binomial standard errors '
                  'of the difference (the +- shown)?',
          'observed': ', '.join(f'alpha {a:g}: {d:+.2f} (+-{verdicts.Z_95 * se:.2f})'
                                for a, d, se, _ in rows),
          'verdict': (kinds[0] if len(set(kinds)) == 1 else 'mixed: ' + '; '.join(
              f'alpha {a:g} {k}' for (a, *_), k in zip(rows, kinds))) + ' (one seed)'}


def _curve_at(points, group, seed, gamma, split):
  """Seed `seed`'s accuracy of `group` interpolated in gamma (None outside its points)."""
  rows = sorted((p['gamma'], p['accuracy'][split]) for p in points
                if p['group'] == group and p['seed'] == seed)
  if not rows or not rows[0][0] <= gamma <= rows[-1][0]:
    return None
  return float(np.interp(gamma, *zip(*rows)))


def _smoothed_at_matched_gamma(points, first, split):
  """Figure 5's comparison: each smoothed teacher's student against the hard teacher's student at
  the same gamma. With T* students (group student_matched_temperature) over seeds, a paired
  verdict; without them, the temperature curve interpolated at the smoothed student's gamma,
  one seed, is only an observation against the sampling error."""
  out = []
  smoothed = [p for p in points if p['group'] == 'student_smoothed_teacher']
  for alpha in sorted({p['setting'] for p in smoothed}):
    matched = [p for p in points if p['group'] == 'student_matched_temperature'
               and p['setting'] == alpha]
    if matched:
      by_seed = {}
      for p in smoothed + matched:
        if p['setting'] == alpha:
          by_seed.setdefault(p['seed'], {})[p['group']] = 100.0 * p['accuracy'][split]
      claim = verdicts.summarize_seeds(by_seed, [dict(
          first='student_smoothed_teacher', second='student_matched_temperature',
          expected_sign=-1, text=f"alpha {alpha:g} teacher's student against the hard "
          f"teacher's at T* = {matched[0]['temperature']:.3f} (same gamma)")])['claims'][0]
      out.append({'alpha': alpha, 'test': 'paired t-test over seeds', **claim})
      continue
    p = next(q for q in smoothed if q['setting'] == alpha and q['seed'] == first)
    curve = _curve_at(points, 'student_hard_teacher', first, p['gamma'], split)
    if curve is None:
      continue
    d, _, verdict = _one_seed(p['accuracy'][split], curve, _num_examples(p, split),
                              expected_sign=-1)
    out.append({'alpha': alpha, 'text': f"alpha {alpha:g} teacher's student against the "
                f"temperature curve interpolated at its gamma {p['gamma']:.3f}",
                'test': 'one seed, no student at matched gamma yet: binomial error only',
                'mean': d, 'std': 0.0, 'n': 1, 'verdict': verdict + ' (interpolated, one seed)'})
  return out


def findings(points, split='validation'):
  """The paper's three findings, each checked from the points with its precision: one-seed
  observations against the binomial error, paired verdicts over the contrast seeds."""
  first = min(p['seed'] for p in points)
  acc = lambda p: 100.0 * p['accuracy'][split]
  teachers = sorted((p['setting'], acc(p)) for p in points
                    if p['group'] == 'teacher' and p['seed'] == first)
  out = {'split': split, 'teacher_accuracy': teachers}
  improves = _teacher_improves(points, first, split)
  if improves:
    out['teacher_improves'] = improves
  hard = [p for p in points if p['group'] == 'student_hard_teacher' and p['seed'] == first]
  above = []
  for p in hard:
    base = _curve_at(points, 'student_baseline', first, p['gamma'], split)
    if base is not None:
      above.append((p['setting'], *_one_seed(p['accuracy'][split], base,
                                             _num_examples(p, split), expected_sign=1)))
  if above:
    outcomes = [verdict for *_, verdict in above]
    beyond = outcomes.count('holds beyond sampling error')
    below = outcomes.count('the opposite holds beyond sampling error')
    out['every_temperature_beats_baseline'] = {
        'text': 'every temperature-distilled student beats the student baseline at its gamma',
        'test': 'one seed, baseline interpolated in gamma: beyond 1.96 binomial standard errors?',
        'observed': ', '.join(f'T {t:g}: {d:+.2f} (+-{verdicts.Z_95 * se:.2f})'
                              for t, d, se, _ in above),
        'verdict': (f'above the baseline beyond sampling error at {beyond} of {len(above)} '
                    f'temperatures, below it at {below} (one seed)')}
  out['smoothed_at_matched_gamma'] = _smoothed_at_matched_gamma(points, first, split)
  out['paired'] = paired_contrasts(points, split)
  return out


def paired_contrasts(points, split='validation'):
  """The key contrast paired over the seeds that hold both its points (Table 4's test): the
  best temperature-distilled student against the alpha 0 baseline. On one seed (a longer
  student schedule of the cause analysis) the test is the binomial error of the two."""
  if not all(any(p['group'] == g for p in points) for g in KEY_GROUPS):
    return None  # a partial sweep
  t = best_temperature(points, split)
  keys = {('student_hard_teacher', t): f'hard teacher T={t:g}',
          ('student_baseline', 0.0): 'baseline alpha=0'}
  by_seed, examples = {}, 10_000
  for p in points:
    key = keys.get((p['group'], p['setting']))
    if key:
      by_seed.setdefault(p['seed'], {})[key] = 100.0 * p['accuracy'][split]
      examples = _num_examples(p, split)
  hard, baseline = keys.values()
  summary = verdicts.summarize_seeds(by_seed, [dict(
      first=hard, second=baseline, expected_sign=1,
      text='the temperature-distilled student beats the student baseline (the key contrast: '
           'the best temperature against alpha 0)')])
  (claim,) = summary['claims']
  if claim['n'] == 1:
    a, b = (summary['networks'][k]['per_seed'][0] / 100.0 for k in (hard, baseline))
    d, se, verdict = _one_seed(a, b, examples, expected_sign=1)
    summary['claims'] = [{key: claim[key] for key in ('text', 'first', 'second', 'n')} | {
        'mean': d, 'std': 0.0, 'verdict': verdict + ' (one seed)',
        'test': f'one seed: beyond 1.96 binomial standard errors (+-{verdicts.Z_95 * se:.2f})?'}]
  return summary


def on_the_fly_check(points, split='validation'):
  """What the cached teacher outputs change (a factor of the cause analysis): the on-the-fly
  student against the cached one at its temperature and seed, and each against that seed's
  alpha 0 baseline (the key contrast on one seed, binomial error): does the verdict change?"""
  def find(group, setting, seed):
    return next((q for q in points if (q['group'], q['setting'], q['seed']) ==
                 (group, setting, seed)), None)
  rows = []
  for p in (q for q in points if q['group'] == 'student_on_the_fly'):
    cached = find('student_hard_teacher', p['setting'], p['seed'])
    if cached is None:
      continue
    row = {'temperature': p['setting'], 'seed': p['seed'],
           'on_the_fly': 100.0 * p['accuracy'][split],
           'cached': 100.0 * cached['accuracy'][split]}
    baseline = find('student_baseline', 0.0, p['seed'])
    if baseline:
      row['baseline'] = 100.0 * baseline['accuracy'][split]
      for name, student in (('cached', cached), ('on_the_fly', p)):
        d, se, verdict = _one_seed(student['accuracy'][split], baseline['accuracy'][split],
                                   _num_examples(p, split), expected_sign=1)
        row[f'{name}_against_baseline'] = {'mean': d, 'se': se, 'verdict': verdict}
      row['changes_verdict'] = (_verdict_kind(row['cached_against_baseline']['verdict']) !=
                                _verdict_kind(row['on_the_fly_against_baseline']['verdict']))
    rows.append(row)
  return rows
