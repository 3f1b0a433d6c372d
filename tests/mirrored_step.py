"""Run as a script: one training step on 1 device and on 2 mirrored logical CPUs.

`python -m tests.mirrored_step` steps AlexNet; `... translation` steps a small Transformer on a
batch whose two halves (one per replica) hold very different numbers of real target tokens, so
only a loss normalized by the global token count gives equal steps. Prints the largest absolute
weight difference. A separate process is needed because the CPU must be split into logical
devices before TensorFlow initializes.
"""
import os
import sys

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


def translation_step(strategy, init_weights, inputs, targets):
  from models import translation_training  # pylint: disable=g-import-not-at-top
  # No dropout (replicas draw other masks), and a large Adam epsilon so that the update is
  # proportional to the gradient (Adam's first steps are otherwise lr * sign(g), which flips on
  # gradients that are zero up to rounding).
  config = recipes.translation_recipe('transformer_small', encoder_layers=1, decoder_layers=1,
                                      d_model=32, num_heads=2, ffn=64, warmup_steps=1,
                                      label_smoothing=0.1, dropout=0.0, attention_dropout=0.0,
                                      relu_dropout=0.0, adam_epsilon=1.0)
  with strategy.scope():
    model = translation_training.build_model(config, 40)
    translation_training.compile_model(model, config)
  model.set_weights(init_weights)
  ds = tf.data.Dataset.from_tensors((inputs, targets)).repeat()
  model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # lr is 0 at step 0: take two steps
  return model.get_weights()


def translation_main():
  training.configure_cpu_devices(2)
  rng = np.random.default_rng(0)
  targets = rng.integers(2, 40, (8, 12)).astype(np.int32)
  targets[:4, 3:] = 0  # the first replica's half: 3 real tokens a row; the second's: 12
  source = rng.integers(2, 40, (8, 7)).astype(np.int32)
  decoder_input = np.pad(targets[:, :-1], [[0, 0], [1, 0]])
  from models import translation_training  # pylint: disable=g-import-not-at-top
  config = recipes.translation_recipe('transformer_small', encoder_layers=1, decoder_layers=1,
                                      d_model=32, num_heads=2, ffn=64)
  init = translation_training.build_model(config, 40).get_weights()
  single = translation_step(tf.distribute.get_strategy(), init, (source, decoder_input), targets)
  mirrored_strategy = training.build_strategy('mirrored')
  assert mirrored_strategy.num_replicas_in_sync == 2
  mirrored = translation_step(mirrored_strategy, init, (source, decoder_input), targets)
  moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
  print(f'replicas=2 moved={moved:.6g} max_diff={diff:.6g}')


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
  translation_main() if sys.argv[1:] == ['translation'] else main()
