r"""Paper Figure 5: ResNet-56 teachers and AlexNet students on CIFAR-10 against gamma.

  python -m experiments.distill_cifar10 --output_dir=results/cifar10_distillation
  python -m experiments.distill_cifar10 --preset=standin_reduced \
      --data_dir=/work/data/cifar10_jpeg --output_dir=results/cifar10_resnet56_standin
Prints the plan first (every run in order, finished / resumed / new, an estimate from step
times measured at start), then trains teachers, the student grid, the contrast seeds and the
cached-outputs check (distillation/figure5.py says what each is). Each point is a
resumable run directory: a killed sweep continues where it stopped and finished points are
reused, as are finished runs with the same config given in --reuse_dirs.
"""
import dataclasses
import os

from absl import flags

import data
from data.run_directory import run_files, section_results
from distillation import figure5, mi_record, train_student
from experiments import common, report, timing
from models import classifier, recipes
from visualization import distillation as figures

# The reduced schedule that fits a 2-core machine, on the CIFAR-10 stand-in: one teacher seed on
# 16k of the 64k steps (drops kept at 1/2 and 3/4) recording Figure 6 every 500 steps, students
# on 30k of the 390k steps with cached teacher outputs, three contrast seeds.
PRESETS = {
    'standin_reduced': dict(
        teacher_alphas=['0', '0.3', '0.6'], distill_temperatures=['1', '2', '4', '8', '16'],
        num_seeds=1, num_contrast_seeds=2, teacher_train_steps=16_000,
        student_train_steps=30_000, teacher_outputs='cached', mi_every=500,
        on_the_fly_temperatures=['4']),
}

common.define_section_flags('Sweep directory.')
flags.DEFINE_enum('preset', None, list(PRESETS), 'Defaults for a reduced run (flags typed on '
                  'the command line win): standin_reduced = ' + str(PRESETS['standin_reduced']))
common.define_number_list('teacher_alphas', ['0', '0.15', '0.3', '0.45', '0.6', '0.75'],
                          'Label smoothing of the teachers (and the student baselines).',
                          lower=0.0, upper=1.0)
common.define_number_list('distill_temperatures', ['1', '2', '3', '4', '8', '12', '16'],
                          'Temperatures for distilling from the hard-target teacher.', lower=1e-6)
common.define_num_seeds(5, 'the whole grid is trained with each (paper: 5).')
flags.DEFINE_integer('num_contrast_seeds', 0, 'Further student seeds of the matched points (the '
                     'best temperature and its baseline, each smoothed teacher and its T*), for '
                     'paired verdicts: the seeds after the grid\'s; teachers are not retrained.',
                     lower_bound=0)
flags.DEFINE_integer('teacher_train_steps', None, 'Teacher steps (default: --train_steps, else '
                     'the recipe\'s 64k).', lower_bound=1)
flags.DEFINE_integer('student_train_steps', None, 'Student steps (default: --train_steps, else '
                     'the recipe\'s 390k).', lower_bound=1)
flags.DEFINE_enum('teacher_outputs', 'on_the_fly', ['on_the_fly', 'cached'],
                  'on_the_fly: the teacher sees the student\'s own augmented example (same crop '
                  'offset and flip); cached: teacher logits of the clean training images, '
                  'computed once (faster, an approximation for augmented students).')
common.define_number_list('on_the_fly_temperatures', [], 'With cached outputs: also train the '
                          'first seed\'s hard-teacher student at these T with the teacher on '
                          'the fly, to measure what caching changes.', lower=1e-6)
flags.DEFINE_integer('mi_every', None, 'Teachers also record Figure 6 (airplane and dog, N = '
                     '600, L = 5) every this many steps (unset: no record).', lower_bound=1)
flags.DEFINE_integer('mi_examples_per_class', 300, 'Training examples per class in that record '
                     '(paper: 300).', lower_bound=2)
flags.DEFINE_list('reuse_dirs', [], 'Finished runs used in place of planned points with the '
                  'same config (e.g. an experiments.train AlexNet baseline).')
flags.DEFINE_boolean('dry_run', False, 'Print the plan and stop.')
flags.DEFINE_boolean('finished_only', False, 'Train nothing: write Figure 5, its points and '
                     'findings from the planned runs that have finished (a sweep in progress '
                     'shows as partial; the sweep itself rewrites them after every run).')
flags.DEFINE_enum('split', 'validation', ['validation', 'test'], 'Split plotted (paper: the '
                  '10k validation split).')
common.define_training_flags()
FLAGS = flags.FLAGS

MI_CLASSES = (0, 5)  # airplane and dog, as experiments.mutual_information --dataset=cifar10


def _measure(runs, strategy):
  """Step seconds of each model the plan still trains, and a teacher's forward pass."""
  measured = {}
  for run in runs:
    model = run.config.model
    if model not in measured:
      measured[model], built = timing.recipe_step_seconds(run.config, strategy, steps=5,
                                                          warmup=2)
      if model == 'resnet56':
        measured['teacher_forward'] = timing.inference_seconds(built,
                                                               run.config.batch_size)
  if any(r.config.teacher_outputs == 'on_the_fly' and r.config.teacher_dir for r in runs):
    measured.setdefault('teacher_forward', measured.get('resnet56') or timing.inference_seconds(
        classifier.build_for(recipes.recipe('resnet56', dataset='cifar10')),
        runs[0].config.batch_size))
  measured.setdefault('alexnet', 0.0)
  return measured


def _train(run, queued_seconds, options):
  options = dataclasses.replace(options, queued_seconds=queued_seconds)
  if run.config.teacher_dir:
    return train_student(run.config, run.run_dir, data_dir=FLAGS.data_dir, options=options)
  callbacks = None
  if run.group == 'teacher' and FLAGS.mi_every:
    callbacks = mi_record.recorder(run.config, run.run_dir, MI_CLASSES, FLAGS.mi_every,
                                   FLAGS.data_dir, FLAGS.mi_examples_per_class)
  return classifier.train_and_evaluate(run.config, run.run_dir, data_dir=FLAGS.data_dir,
                                       options=options, callbacks=callbacks)


def _train_all(runs, num_train, step_seconds, later, options, points, write):
  queued = figure5.seconds_queued_after(runs, num_train, step_seconds, later)
  for run, queued_seconds in zip(runs, queued):
    print(f'[{run.name}] {run.run_dir}', flush=True)
    results = _train(run, queued_seconds, options)
    if not results.get('finished'):
      return False  # --stop_after_steps: the sweep stops here, as a kill would
    points.append(figure5.point(run, results, FLAGS.output_dir))
    write(points)
  return True


def _write_section(points, planned):
  """Figure 5, its points and the findings from the points so far (`planned` runs in all)."""
  _, summary = figures.distillation_figure(points, os.path.join(FLAGS.output_dir, 'figure5'),
                                           FLAGS.split)
  run_dirs = [run_files.resolve(p['run_dir'], FLAGS.output_dir) for p in points]
  section_results.write(FLAGS.output_dir, figure5.RESULT, {
      'split': FLAGS.split, 'points': points, 'summary': summary,
      'findings': figure5.findings(points, FLAGS.split),
      'on_the_fly_check': figure5.on_the_fly_check(points, FLAGS.split),
      'progress': {'finished': len(points), 'planned': planned}},
                        common.provenance(run_dirs, FLAGS.data_dir))


def _finished_points(grid, runs, contrast_seeds):
  """The points of the finished planned runs and of the finished contrast runs (chosen from
  the first seed's points so far)."""
  points = [p for run in runs if (p := figure5.finished_point(run, FLAGS.output_dir))]
  if points:
    points += [p for run in figure5.contrast_runs(grid, points, contrast_seeds, FLAGS.split)
               if (p := figure5.finished_point(run, FLAGS.output_dir))]
  return points


def main(argv):
  del argv
  common.apply_preset(PRESETS.get(FLAGS.preset, {}))
  alphas = [float(a) for a in FLAGS.teacher_alphas]
  if 0.0 not in alphas:
    raise ValueError('--teacher_alphas must include 0 (the hard-target teacher).')
  seeds = common.seeds()
  grid = figure5.Grid(
      FLAGS.output_dir, alphas, [float(t) for t in FLAGS.distill_temperatures], seeds, seeds,
      dict(common.recipe_overrides(), dataset='cifar10', label_smoothing=0.0,
           distillation='soft', distill_beta=1.0, student_temperature=1.0),
      FLAGS.teacher_train_steps or FLAGS.train_steps,
      FLAGS.student_train_steps or FLAGS.train_steps, FLAGS.teacher_outputs,
      figure5.reuse_index(FLAGS.reuse_dirs))
  grid = figure5.matched_temperatures(grid, FLAGS.data_dir)
  contrast_seeds = list(range(seeds[-1] + 1, seeds[-1] + 1 + FLAGS.num_contrast_seeds))
  planned = (len(grid.grid_runs()) + len(seeds) * len(grid.unsolved()) +
             len(FLAGS.on_the_fly_temperatures) +
             len(contrast_seeds) * figure5.contrasts_per_seed(grid))
  write = lambda points: _write_section(points, planned)
  if FLAGS.finished_only:
    points = _finished_points(grid, _runs(grid), contrast_seeds)
    if not points:
      raise ValueError(f'none of the planned runs under {FLAGS.output_dir} has finished yet.')
    write(points)
  elif not _sweep(grid, contrast_seeds, write):
    return
  print(report.write_section_markdown(FLAGS.output_dir, 'distillation_cifar10'))


def _runs(grid):
  """The grid's runs that can be named now, and the cached-outputs check."""
  return grid.grid_runs() + [grid.run('student_on_the_fly', float(t), grid.seeds[0])
                             for t in FLAGS.on_the_fly_temperatures]


def _sweep(grid, contrast_seeds, write):
  """Prints the plan, then trains the teachers, the students (with the T* students solved from
  the finished teachers) and the contrasts chosen from them; True when all have finished."""
  options = common.run_options()
  num_train = data.num_examples('cifar10', 'train', FLAGS.data_dir, FLAGS.validation_size)
  runs = _runs(grid)
  # Once the grid has finished, its points name the contrast runs: they are planned like the rest.
  known = (figure5.contrast_runs(grid, _finished_points(grid, runs, []), contrast_seeds,
                                 FLAGS.split)
           if not grid.unsolved() and all(figure5.status(r) == 'finished' for r in runs)
           else [])
  todo = [r for r in runs + known if figure5.remaining_steps(r, num_train)]
  step_seconds = _measure(todo or runs[:1], options.strategy)
  later = figure5.later_runs(grid, num_train, step_seconds, contrast_seeds, bool(known))
  print('\n'.join(figure5.plan_lines(runs + known, num_train, step_seconds, later)), flush=True)
  if FLAGS.dry_run:
    return False
  points, later_seconds = [], sum(seconds for _, seconds in later)
  teachers = grid.teachers()
  students = lambda: _runs(grid)[len(teachers):]
  if not _train_all(teachers, num_train, step_seconds,
                    later_seconds + sum(figure5.estimated_seconds(r, num_train, step_seconds)
                                        for r in students()), options, points, write):
    return False
  grid = figure5.matched_temperatures(grid, FLAGS.data_dir)  # every teacher has finished
  if grid.matched:
    print('T* (the hard teacher\'s temperature at each smoothed teacher\'s gamma): ' +
          ', '.join(f'alpha {a:g}: {t:.4f}' for a, t in sorted(grid.matched.items())), flush=True)
  later_seconds = figure5.contrast_seconds(
      grid, num_train, step_seconds, figure5.contrasts_to_train(grid, contrast_seeds))
  if not _train_all(students(), num_train, step_seconds, later_seconds, options, points, write):
    return False
  contrasts = figure5.contrast_runs(grid, points, contrast_seeds, FLAGS.split)
  if contrasts:
    print('contrast points: ' + ', '.join(r.name for r in contrasts), flush=True)
  return _train_all(contrasts, num_train, step_seconds, 0.0, options, points, write)


if __name__ == '__main__':
  common.run(main)
