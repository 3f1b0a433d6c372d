"""Run as a script: one AlexNet training step on 1 device and on 2 mirrored logical CPUs.

Prints the largest absolute weight difference. A separate process is needed because the CPU
must be split into logical devices before TensorFlow initializes.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from models import recipes, training


def one_step(strategy, config, init_weights, x, y):
  with strategy.scope():
    model = training.build_for(config)
    training.compile_model(model, config, steps=10)
  model.set_weights(init_weights)
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(y), drop_remainder=True).repeat()
  model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
  return model.get_weights()


def main():
  training.configure_cpu_devices(2)
  config = recipes.recipe('alexnet', batch_size=16, train_steps=10, momentum=0.9)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 24, 24, 3)).astype(np.float32)
  y = rng.integers(0, 10, 16).astype(np.int32)
  init = training.build_for(config).get_weights()
  single = one_step(tf.distribute.get_strategy(), config, init, x, y)
  mirrored_strategy = training.build_strategy('mirrored')
  assert mirrored_strategy.num_replicas_in_sync == 2
  mirrored = one_step(mirrored_strategy, config, init, x, y)
  moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
  print(f'replicas=2 moved={moved:.6g} max_diff={diff:.6g}')


if __name__ == '__main__':
  main()
