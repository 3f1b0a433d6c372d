r"""Training images/second of each model with its recipe's optimizer and batch size.

  python -m experiments.benchmark_train [--steps=30] [--models=fc,alexnet,resnet56]
Feeds one cached synthetic batch, so the figure is the model's step cost alone.
"""
import time

from absl import flags

from experiments import common

flags.DEFINE_list('models', ['fc', 'alexnet', 'resnet56'], 'Models to time.')
flags.DEFINE_integer('steps', 30, 'Timed steps per model (after 5 warm-up steps).')
common.define_runtime_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from models import recipes, training  # pylint: disable=g-import-not-at-top
  strategy = common.make_strategy()
  for name in FLAGS.models:
    config = recipes.recipe(name, train_steps=1000)
    with strategy.scope():
      model = training.build_for(config)
      training.compile_model(model, config, 1000, FLAGS.jit_compile)
    shape = (config.batch_size,) + model.input_shape[1:]
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = np.zeros(config.batch_size, np.int32)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, shuffle=False)
    rate = FLAGS.steps * config.batch_size / (time.perf_counter() - start)
    print(f'{name:9s} batch {config.batch_size:4d} {rate:9,.0f} images/s '
          f'({strategy.num_replicas_in_sync} replica(s))', flush=True)


if __name__ == '__main__':
  common.run(main)
