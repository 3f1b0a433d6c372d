r"""Paper Table 3 / Figure 2 (left): ResNet-56 on CIFAR-100, hard targets vs temperature
scaling vs label smoothing.

  python -m experiments.calibration_cifar100 --output_dir=results/cifar100_calibration
Trains alpha in --alphas with the paper recipe (or reuses --run_dirs from experiments.train),
fits T on the validation split of the alpha = 0 model, reports ECE on the test split.
"""
import os

from absl import flags

from experiments import calibration_section, common, report
from models import sweep

common.define_section_flags('Sweep and calibration output directory.',
                            'Reuse these finished runs instead of training.',
                            alphas=['0', '0.05'], alphas_help='Label-smoothing values to train.')
flags.DEFINE_integer('num_bins', 15, 'ECE bins.', lower_bound=1)
common.define_training_flags(default_model='resnet56')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  run_dirs = FLAGS.run_dirs
  if not run_dirs:
    alphas = [float(a) for a in FLAGS.alphas]
    sweep.run_grid(FLAGS.output_dir, FLAGS.model, alphas, [FLAGS.seed],
                   common.recipe_overrides(dataset=FLAGS.dataset or 'cifar100'),
                   data_dir=FLAGS.data_dir, options=common.run_options())
    run_dirs = [os.path.join(FLAGS.output_dir, sweep.run_dir_name(a, FLAGS.seed))
                for a in alphas]
  calibration_section.calibrate_run_dirs(run_dirs, FLAGS.output_dir,
                                         common.data_dir_for_reused_runs(), FLAGS.num_bins)
  print(report.write_section_markdown(FLAGS.output_dir, 'calibration'))


if __name__ == '__main__':
  common.run(main)
