r"""Implicit calibration (paper Section 3) of any finished `experiments.train` runs.

  python -m experiments.calibration --run_dirs=results/mnist_fc_sweep/alpha_0_seed_0,... \
      --output_dir=results/mnist_fc_calibration
Temperature is fitted on each hard-target run's validation split; ECE is reported on test.
"""
from absl import flags

from experiments import calibration_section, common, report

common.define_section_flags('Where calibration.{json,md} and reliability.* go.',
                            'Finished run directories (one model and dataset).')
flags.DEFINE_integer('num_bins', 15, 'ECE bins.', lower_bound=1)
flags.mark_flag_as_required('run_dirs')
common.define_data_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  calibration_section.calibrate_run_dirs(FLAGS.run_dirs, FLAGS.output_dir,
                                         common.data_dir_for_reused_runs(), FLAGS.num_bins)
  print(report.write_section_markdown(FLAGS.output_dir, 'calibration'))


if __name__ == '__main__':
  common.run(main)
