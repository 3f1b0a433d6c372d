r"""Paper Figure 6: mutual information between a training example's index and the logit
difference z_a - z_b during training, without and with label smoothing.

  python -m experiments.mutual_information --dataset=cifar10 \
      --output_dir=results/mutual_information_cifar10
Trains both runs with the paper recipe, estimating at step 0 and every --every steps (or reuses
--run_dirs, e.g. teachers of distill_cifar10 --mi_every=N), then draws the figure and writes the
points. --dataset picks the setting (ROWS): cifar10 is the paper's (ResNet-56, airplane and dog,
300 training examples of each, pad-4 crop and flip as the noise, L = 5, every 4k of the 64k
steps); mnist is ours (the 2x1200 recipe's +-2 px shifts, digits 0 and 1: the paper's digits
are unstated). --model, --classes and --every override them.
"""
import math
import os

from absl import flags
import numpy as np

import data
from data.run_directory import run_files, section_results
from distillation import mi_record
from experiments import common, report
from models import classifier, recipes, run_records, sweep
from visualization import distillation as figures

common.define_section_flags(
    'Where the runs, the figure and the points go.', 'Reuse finished runs trained by this binary '
    '(they hold mutual_information.json) instead of training.', alphas=['0', '0.1'],
    alphas_help='Label smoothing of the runs compared (the paper does not state its alpha).')
common.define_number_list('classes', None, 'The two classes a and b of the logit difference '
                          'z_a - z_b.', kind=int, lower=0)
flags.DEFINE_integer('examples_per_class', 300, 'Training examples per class (paper: 300).',
                     lower_bound=2)
flags.DEFINE_integer('num_draws', 5, 'L, the augmentations averaged into mu_x (paper: 5); one '
                     'more independent draw plays y_x.', lower_bound=1)
flags.DEFINE_integer('every', None, 'Estimate every this many steps (and at step 0).',
                     lower_bound=1)
flags.DEFINE_integer('mi_seed', 0, 'Seed of the augmentation draws (the same at every step).')
flags.DEFINE_boolean('in_sample', False, 'Plug in one of the L draws as y_x instead of an extra '
                     'draw (biases the estimate up by about 0.5 log(L / (L - 1))).')
flags.DEFINE_integer('num_init_seeds', 0, 'Also estimate I_hat of this many freshly '
                     'initialized networks (seeds 0, 1, ...; the first run\'s config and draws): '
                     'how much the step-0 value depends on the initialization alone.',
                     lower_bound=0)
common.define_training_flags()
FLAGS = flags.FLAGS

# --dataset -> the defaults of the flags it sets.
ROWS = {
    'mnist': dict(model='fc', classes=['0', '1'], every=50),
    'cifar10': dict(model='resnet56', classes=['0', '5'], every=4000),
}
common.define_dataset_rows(ROWS, 'the settings of Figure 6')


def main(argv):
  del argv
  common.apply_preset(ROWS[FLAGS.dataset])
  classes = [int(c) for c in FLAGS.classes]
  num_classes = data.num_classes(FLAGS.dataset)
  if len(classes) != 2 or classes[0] == classes[1] or max(classes) >= num_classes:
    raise ValueError(f'--classes={FLAGS.classes}: give two different classes of {FLAGS.dataset} '
                     f'(0 to {num_classes - 1}).')
  run_dirs = FLAGS.run_dirs
  if not run_dirs:
    run_dirs, options = [], common.run_options()
    for alpha in [float(a) for a in FLAGS.alphas]:
      config = recipes.recipe(FLAGS.model, **common.recipe_overrides(label_smoothing=alpha))
      run_dir = os.path.join(FLAGS.output_dir, sweep.run_dir_name(alpha, config.seed))
      callbacks = mi_record.recorder(config, run_dir, classes, FLAGS.every, FLAGS.data_dir,
                                     FLAGS.examples_per_class, FLAGS.num_draws, FLAGS.mi_seed,
                                     FLAGS.in_sample)
      classifier.train_and_evaluate(config, run_dir, data_dir=FLAGS.data_dir, options=options,
                                    callbacks=callbacks)
      run_dirs.append(run_dir)
  curves, points = [], {}
  for run_dir in run_dirs:
    run_records.finished_results(run_dir)  # refuses a run that does not exist or has not finished
    config, _ = run_records.read_run_config(run_dir)
    record = mi_record.load_record(run_dir)
    if not record['points']:
      raise run_files.RunDirError(f'{run_dir} has no {mi_record.RECORD}; train it with this '
                                  'binary.')
    steps = [p['step'] for p in record['points']]
    values = [p['mutual_information'] for p in record['points']]
    label = f'alpha={config.label_smoothing:g}'
    curves.append((label, steps, values))
    points[label] = {'run_dir': run_files.relative_to(run_dir, FLAGS.output_dir),
                     'settings': record['settings'], 'steps': steps,
                     'mutual_information': values}
  num_examples = points[curves[0][0]]['settings']['num_examples']
  run_files.make_dir(FLAGS.output_dir)
  stem = os.path.join(FLAGS.output_dir, 'mutual_information')
  first_config, _ = run_records.read_run_config(run_dirs[0])
  drops = recipes.learning_rate_drops(
      first_config, run_records.finished_results(run_dirs[0])['steps_trained'])
  figures.mutual_information_figure(curves, num_examples, stem,
                                    f'{FLAGS.model} on {FLAGS.dataset}, classes {classes}', drops)
  result = {'model': FLAGS.model, 'dataset': FLAGS.dataset, 'classes': classes,
            'num_examples': num_examples, 'runs': points}
  if FLAGS.num_init_seeds:
    result['at_initialization'] = _at_initialization(run_dirs[0],
                                                     points[curves[0][0]]['settings'])
  section_results.write(FLAGS.output_dir, mi_record.FIGURE6, result,
                        common.provenance(run_dirs, common.data_dir_for_reused_runs()))
  report.write_section_markdown(FLAGS.output_dir, 'mutual_information')
  for label, steps, values in curves:
    peak = max(range(len(values)), key=values.__getitem__)
    print(f'{label:10s} MI at step 0: {values[0]:.3f}, peak {values[peak]:.3f} at step '
          f'{steps[peak]}, final {values[-1]:.3f} at step {steps[-1]} (log 2 = 0.693, log N = '
          f'{math.log(num_examples):.3f})')
  if FLAGS.num_init_seeds:
    values = result['at_initialization']['mutual_information']
    print(f'at initialization, seeds 0-{FLAGS.num_init_seeds - 1}: ' +
          ', '.join(f'{v:.3f}' for v in values) + f' (median {np.median(values):.3f})')


def _at_initialization(run_dir, settings):
  """{'seeds', 'mutual_information'} of --num_init_seeds fresh networks of run_dir's config, with
  its record's draws."""
  config, data_dir = run_records.read_run_config(run_dir)
  data_dir = common.data_dir_for_reused_runs() or data_dir
  classes = settings['classes']
  images, _ = mi_record.select_examples(config.dataset, classes,
                                        settings['num_examples'] // len(classes), data_dir,
                                        config.validation_size)
  seeds = list(range(FLAGS.num_init_seeds))
  return {'seeds': seeds, 'mutual_information': mi_record.at_initialization(
      config, seeds, images, classes, settings['num_draws'], settings['seed'],
      settings['in_sample'])}


if __name__ == '__main__':
  common.run(main)
