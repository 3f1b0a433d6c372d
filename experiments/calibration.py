r"""Implicit calibration (paper Section 3) of any finished `experiments.train` runs.

  python -m experiments.calibration --run_dirs=results/mnist_fc_sweep/alpha_0_seed_0,... \
      --output_dir=results/mnist_fc_calibration
Temperature is fitted on each hard-target run's validation split; ECE is reported on test.
"""
from absl import flags

from experiments import common

flags.DEFINE_list('run_dirs', None, 'Finished run directories (one model and dataset).')
flags.DEFINE_string('output_dir', None, 'Where calibration.{json,md} and reliability.* go.')
flags.DEFINE_integer('num_bins', 15, 'ECE bins.', lower_bound=1)
flags.mark_flags_as_required(['run_dirs', 'output_dir'])
common.define_data_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from experiments import sweep  # pylint: disable=g-import-not-at-top
  print(sweep.calibrate_run_dirs(FLAGS.run_dirs, FLAGS.output_dir,
                                 common.data_dir_for_reused_runs(),
                                 FLAGS.num_bins))


if __name__ == '__main__':
  common.run(main)
