r"""Paper Figure 5: ResNet-56 teachers and AlexNet students on CIFAR-10 against gamma.

  python -m experiments.distill_cifar10 --output_dir=results/cifar10_distillation
Trains, per seed: teachers for each alpha; AlexNet students trained with each alpha (no
distillation); students distilled (beta = 1, student T = 1) from the hard-target teacher at each
temperature; and from each smoothed teacher at T = 1. Each point is a resumable run directory:
a killed sweep continues where it stopped and finished points are reused. Recipe flags
(--train_steps, --batch_size, ...) shorten teachers and students alike for smoke runs.
"""
import os

from absl import flags

from experiments import common

flags.DEFINE_string('output_dir', None, 'Sweep directory.')
flags.mark_flag_as_required('output_dir')
common.define_number_list('teacher_alphas', ['0', '0.15', '0.3', '0.45', '0.6', '0.75'],
                          'Label smoothing of the teachers (and the student baselines).',
                          lower=0.0, upper=1.0)
common.define_number_list('temperatures', ['1', '2', '3', '4', '8', '12', '16'],
                          'Temperatures for distilling from the hard-target teacher.', lower=1e-6)
flags.DEFINE_integer('num_seeds', 5, 'Seeds per point (paper: 5).', lower_bound=1)
flags.DEFINE_enum('teacher_outputs', 'on_the_fly', ['on_the_fly', 'cached'],
                  'on_the_fly: the teacher sees the student\'s own augmented example (same crop '
                  'offset and flip); cached: teacher logits of the clean training images, '
                  'computed once (faster, an approximation for augmented students).')
flags.DEFINE_enum('split', 'validation', ['validation', 'test'], 'Split plotted (paper: the '
                  '10k validation split).')
common.define_training_flags()
FLAGS = flags.FLAGS


def plan(output_dir, alphas, temperatures, seeds, teacher_outputs='on_the_fly'):
  """[(group, setting, seed, model, run_dir, extra recipe fields)] in training order."""
  students = dict(teacher_outputs=teacher_outputs)
  def teacher_dir(alpha, seed):
    return os.path.join(output_dir, 'teachers', f'alpha_{alpha:g}_seed_{seed}')
  runs = []
  for seed in seeds:
    runs += [('teacher', a, seed, 'resnet56', teacher_dir(a, seed), dict(label_smoothing=a))
             for a in alphas]
    runs += [('student_baseline', a, seed, 'alexnet',
              os.path.join(output_dir, 'students_baseline', f'alpha_{a:g}_seed_{seed}'),
              dict(label_smoothing=a)) for a in alphas]
    runs += [('student_hard_teacher', t, seed, 'alexnet',
              os.path.join(output_dir, 'students_hard_teacher', f'T_{t:g}_seed_{seed}'),
              dict(teacher_dir=teacher_dir(0.0, seed), distill_temperature=t, **students))
             for t in temperatures]
    runs += [('student_smoothed_teacher', a, seed, 'alexnet',
              os.path.join(output_dir, 'students_smoothed_teacher', f'alpha_{a:g}_seed_{seed}'),
              dict(teacher_dir=teacher_dir(a, seed), **students)) for a in alphas if a > 0]
  return runs


def main(argv):
  del argv
  from distillation import figures, train_student  # pylint: disable=g-import-not-at-top
  from models import recipes, run_files, training  # pylint: disable=g-import-not-at-top
  alphas = [float(a) for a in FLAGS.teacher_alphas]
  if 0.0 not in alphas:
    raise ValueError('--teacher_alphas must include 0 (the hard-target teacher).')
  base = dict(common.recipe_overrides(), dataset='cifar10', label_smoothing=0.0,
              distillation='soft', distill_beta=1.0, student_temperature=1.0)
  kwargs = common.train_kwargs()
  points = []
  runs = plan(FLAGS.output_dir, alphas, [float(t) for t in FLAGS.temperatures],
              range(FLAGS.num_seeds), FLAGS.teacher_outputs)
  for i, (group, setting, seed, model, run_dir, extra) in enumerate(runs):
    print(f'[{i + 1}/{len(runs)}] {group} {setting:g} seed {seed}', flush=True)
    config = recipes.recipe(model, **dict(base, seed=seed, **extra))
    train = train_student if config.teacher_dir else training.train_and_evaluate
    results = train(config, run_dir, **kwargs)
    points.append({'group': group, 'setting': setting, 'seed': seed,
                   'run_dir': run_files.relative_to(run_dir, FLAGS.output_dir),
                   'gamma': results.get('teacher_smoothness_index', config.label_smoothing),
                   'accuracy': {s: m['accuracy'] for s, m in results['metrics'].items()}})
  _, summary = figures.distillation_figure(points, os.path.join(FLAGS.output_dir, 'figure5'),
                                           FLAGS.split)
  run_files.write_json(os.path.join(FLAGS.output_dir, 'points.json'),
                       {'split': FLAGS.split, 'points': points, 'summary': summary})
  for group, rows in summary.items():
    for setting, gamma, acc, std, n in rows:
      print(f'{group:26s} {setting:6g} gamma {gamma:.3f} {FLAGS.split} accuracy {acc:.2f} '
            f'+- {std:.2f} ({n} seeds)')


if __name__ == '__main__':
  common.run(main)
