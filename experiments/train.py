r"""Trains one classifier with the paper's recipe and writes config, checkpoints and results.

  python -m experiments.train --model=fc --dataset=mnist --label_smoothing=0.1 \
      --output_dir=/tmp/fc_ls0.1
"""
import json

from absl import flags

from experiments import common
from models import classifier, recipes, run_records

common.define_section_flags('Run directory (resumes if it holds this run).')
common.define_training_flags()
flags.mark_flag_as_required('model')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  config = recipes.recipe(FLAGS.model, **common.recipe_overrides())
  print('config:', json.dumps(run_records.config_to_json(config)), flush=True)
  results = classifier.train_and_evaluate(config, FLAGS.output_dir, data_dir=FLAGS.data_dir,
                                          options=common.run_options())
  print(json.dumps(results.get('metrics', results), indent=2))


if __name__ == '__main__':
  common.run(main)
