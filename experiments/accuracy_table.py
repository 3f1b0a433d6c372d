r"""Table 2 style sweep: accuracy (and NLL, ECE) over label-smoothing alphas, mean over seeds.

  python -m experiments.accuracy_table --model=fc --dataset=mnist \
      --output_dir=results/mnist_fc_sweep
Finished points are collected, unfinished ones trained (a killed sweep resumes).
"""
import os

from absl import flags

from experiments import common, report
from models import recipes, sweep

common.define_section_flags('Sweep directory (one run directory per point).',
                            alphas=['0', '0.05', '0.1', '0.15', '0.3'])
common.define_num_seeds(1, 'every alpha is trained with each (paper: 5).')
flags.DEFINE_enum('split', 'test', ['validation', 'test'], 'Split reported in the table.')
common.define_training_flags(default_model='fc')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  overrides = common.recipe_overrides()
  results = sweep.run_grid(FLAGS.output_dir, FLAGS.model, [float(a) for a in FLAGS.alphas],
                           common.seeds(), overrides,
                           data_dir=FLAGS.data_dir, options=common.run_options())
  dataset = recipes.recipe(FLAGS.model, **overrides).dataset
  run_dirs = [os.path.join(FLAGS.output_dir, sweep.run_dir_name(a, s)) for a, s in results]
  sweep.write_table(sweep.accuracy_rows(results, FLAGS.split), FLAGS.output_dir, FLAGS.model,
                    dataset, common.provenance(run_dirs, FLAGS.data_dir), FLAGS.split)
  print(report.write_section_markdown(FLAGS.output_dir, 'accuracy'))


if __name__ == '__main__':
  common.run(main)
