r"""Paper Figure 1: penultimate activations of three classes projected onto the plane of their
templates, without and with label smoothing, on training and validation examples.

  python -m experiments.penultimate --dataset=cifar10 --output_dir=results/penultimate_cifar10
Trains alpha = 0 and 0.1 with the paper recipe, or reuses --run_dirs=DIR_ALPHA0,DIR_ALPHA0.1.
--dataset picks the row (ROWS: its model and classes); --model, --classes and --class_names
override them. ImageNet (a prepared tfds imagenet2012; training: accelerators only) reuses
finished Inception-v4 runs of experiments.accuracy_table; the paper's second ImageNet row
(semantically similar classes) is --classes=265,266,0
--class_names=toy_poodle,miniature_poodle,tench.
"""
import os

from absl import flags
import numpy as np

import data
from data.run_directory import run_files, section_results
from experiments import common, report
from models import classifier, sweep
from visualization import cluster_statistics, figures, penultimate

common.define_section_flags('Where runs, figure, points and statistics go.',
                            'Reuse two finished runs (alpha = 0, then alpha > 0).',
                            alphas=['0', '0.1'],
                            alphas_help='The two label-smoothing values compared.')
common.define_number_list('classes', None, 'Three class indices (default: the paper\'s).',
                          kind=int, lower=0)
flags.DEFINE_list('class_names', None, 'Names of the three classes.')
flags.DEFINE_list('colors', ['tab:blue', 'tab:orange', 'tab:green'], 'Colours of the classes.')
flags.DEFINE_integer('examples_per_class', 100, 'Examples projected per class and split.',
                     lower_bound=1)
common.define_training_flags()
FLAGS = flags.FLAGS

# Figure 1's rows (MNIST is ours): --dataset -> the defaults of the flags it sets.
ROWS = {
    'mnist': dict(model='fc', classes=['0', '1', '2'], class_names=['zero', 'one', 'two']),
    'cifar10': dict(model='alexnet', classes=['0', '1', '2'],
                    class_names=['airplane', 'automobile', 'bird']),
    'cifar100': dict(model='resnet56', classes=['0', '1', '2'],
                     class_names=['apple', 'aquarium_fish', 'baby']),
    'imagenet2012': dict(model='inception_v4', classes=['0', '299', '499'],
                         class_names=['tench', 'meerkat', 'cleaver']),
}
common.define_dataset_rows(ROWS, 'the rows of Figure 1')


def main(argv):
  del argv
  common.apply_preset(ROWS[FLAGS.dataset])
  classes = [int(c) for c in FLAGS.classes]
  if len(classes) != 3 or len(FLAGS.class_names) != 3:
    raise ValueError('--classes and --class_names need exactly three entries.')
  num_classes = data.num_classes(FLAGS.dataset)
  if max(classes) >= num_classes:
    raise ValueError(f'--classes={FLAGS.classes}: {FLAGS.dataset} has classes 0 to '
                     f'{num_classes - 1}; choose three of those.')
  run_dirs = FLAGS.run_dirs
  if not run_dirs:
    alphas = [float(a) for a in FLAGS.alphas]
    sweep.run_grid(FLAGS.output_dir, FLAGS.model, alphas, [FLAGS.seed],
                   common.recipe_overrides(), FLAGS.data_dir, common.run_options())
    run_dirs = [os.path.join(FLAGS.output_dir, sweep.run_dir_name(a, FLAGS.seed)) for a in alphas]
  run_files.make_dir(FLAGS.output_dir)
  panels, points, stats = [], {}, {}
  for run_dir in run_dirs:
    model, config, stored_data_dir = classifier.load_trained(run_dir)
    projected = penultimate.project_splits(model, config, classes, FLAGS.examples_per_class,
                                           data_dir=(common.data_dir_for_reused_runs() or
                                                     stored_data_dir))
    for split, (xy, labels) in projected.items():
      name = f'alpha={config.label_smoothing:g}, {split}'
      panels.append((name, xy, labels))
      points[f'alpha{config.label_smoothing:g}_{split}_points'] = xy
      points[f'alpha{config.label_smoothing:g}_{split}_labels'] = labels
      stats[name] = cluster_statistics(xy, labels, classes)
  stem = os.path.join(FLAGS.output_dir, 'penultimate')
  figures.projection_figure(panels, classes, FLAGS.class_names, stem, FLAGS.colors,
                            f'{FLAGS.model} on {FLAGS.dataset}: penultimate layer')
  run_files.write_npz(stem + '_points.npz', **points)
  recorded = [run_files.relative_to(d, FLAGS.output_dir) for d in run_dirs]
  section_results.write(FLAGS.output_dir, penultimate.RESULT, {
      'model': FLAGS.model, 'dataset': FLAGS.dataset, 'classes': classes, 'run_dirs': recorded,
      'panels': stats}, common.provenance(run_dirs, common.data_dir_for_reused_runs()))
  report.write_section_markdown(FLAGS.output_dir, 'penultimate')
  for name, s in stats.items():
    print(f'{name:28s} mean spread {s["mean_spread"]:8.3f}  mean-distance '
          f'{np.mean(list(s["mean_distances"].values())):8.3f}  spread/distance '
          f'{s["spread_over_distance"]:.3f}  equidistance {s["equidistance"]:.3f}')


if __name__ == '__main__':
  common.run(main)
