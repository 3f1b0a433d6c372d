r"""Evaluates a run's latest checkpoint, finished or still training (read only; the run may go on).

  python -m experiments.evaluate_checkpoint \
      --run_dir=results/cifar10_resnet56_standin_64k/teachers/alpha_0_seed_0 \
      --data_dir=/work/data/cifar10_jpeg
Prints one JSON line: the run, the checkpoint's step, the split and its metrics (as results.json
has them at the end of a run).
"""
import json

from absl import flags

from experiments import common
from models import classifier

flags.DEFINE_string('run_dir', None, 'Run directory with checkpoints/ (experiments.train, '
                    'a distillation student or teacher).')
flags.mark_flag_as_required('run_dir')
flags.DEFINE_enum('split', 'validation', ['validation', 'test'], 'Split evaluated.')
common.define_data_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  model, config, data_dir, step = classifier.load_checkpoint(FLAGS.run_dir)
  if FLAGS.split == 'validation' and config.validation_size == 0:
    raise ValueError(f'{FLAGS.run_dir} trains on its validation split (validation_size 0); '
                     'evaluate --split=test.')
  metrics, _, _ = classifier.split_metrics(model, config,
                                           common.data_dir_for_reused_runs() or data_dir,
                                           FLAGS.split)
  print(json.dumps({'run_dir': FLAGS.run_dir, 'step': step, 'split': FLAGS.split, **metrics}))


if __name__ == '__main__':
  common.run(main)
