"""Run as one worker of a MultiWorkerMirroredStrategy (TF_CONFIG set by the test): trains a small
network on tfds' mock imagenet2012 (the streamed path) and prints, as one JSON line, the tfds
split strings this worker's training input read and the per-replica batch shapes it fed.

`python -m tests.per_host_input OUTPUT_DIR DATA_DIR`. A separate process per worker is needed
because each host of a pod is one; the test starts two on localhost ports.
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

from data import streaming  # pylint: disable=g-import-not-at-top
from models import classifier, recipes, strategies, trainer  # pylint: disable=g-import-not-at-top

# 24 mock examples: validation 8, training 16, a global batch of 4 (2 per worker), 4 steps.
NUM_EXAMPLES = 24
CONFIG = dict(dataset='imagenet2012', preprocessing='inception', image_size=16, width=16,
              batch_size=4, train_steps=4, validation_size=8, lr_boundaries=())


def main(output_dir, data_dir):
  strategy = strategies.build_strategy('multi_worker')
  read, fed = [], []
  plain_read, plain_build = streaming._read, streaming.build_streamed_dataset  # pylint: disable=protected-access

  def spy_read(tfds_name, data_dir, spec, shuffle_seed=None):
    if shuffle_seed is not None:  # a training read (evaluation reads in the prepared order)
      read.append(spec)
    return plain_read(tfds_name, data_dir, spec, shuffle_seed)

  def spy_build(*args, **kwargs):
    batches = plain_build(*args, **kwargs)
    if kwargs.get('training'):
      context = kwargs.get('input_context')
      fed.append({'pipeline': context and context.input_pipeline_id,
                  'pipelines': context and context.num_input_pipelines,
                  'batch': batches.element_spec[0].shape.as_list()})
    return batches
  streaming._read, streaming.build_streamed_dataset = spy_read, spy_build  # pylint: disable=protected-access
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    results = classifier.train_and_evaluate(
        recipes.recipe('fc', **CONFIG), output_dir, data_dir=data_dir,
        options=trainer.RunOptions(strategy=strategy, checkpoint_every=2,
                                   log=lambda *a, **k: None))
  print(json.dumps({'worker': strategy.cluster_resolver.task_id, 'read': read, 'fed': fed,
                    'steps_trained': results['steps_trained'],
                    'replicas': strategy.num_replicas_in_sync}))


if __name__ == '__main__':
  main(*sys.argv[1:3])
