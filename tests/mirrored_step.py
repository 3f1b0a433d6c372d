"""Run as a script: one training step on 1 device and on 2 mirrored logical CPUs.

`python -m tests.mirrored_step` steps AlexNet; `... translation` steps a small Transformer on a
batch whose two halves (one per replica) hold very different numbers of real target tokens, so
only a loss normalized by the global token count gives equal steps. Prints the largest absolute
weight difference. `... average` trains a small batch-normalized network with the weight
average on 2 replicas and prints its largest difference from TF's formula replayed in numpy;
`... predict` prints that of predict_logits on 2 replicas from the model called on the whole
inputs. A separate process is needed because the CPU must be split into logical devices before
TensorFlow initializes; the averaged network also serves the single-device tests.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

from models import classifier, recipes, strategies, translation_training


def one_step(strategy, config, init_weights, x, y):
  with strategy.scope():
    model = classifier.build_for(config)
    classifier.compile_model(model, config, steps=10)
  model.set_weights(init_weights)
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(y), drop_remainder=True).repeat()
  model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
  return model.get_weights()


def translation_step(strategy, init_weights, inputs, targets):
  # No dropout (replicas draw other masks), and a large Adam epsilon so that the update is
  # proportional to the gradient (Adam's first steps are otherwise lr * sign(g), which flips on
  # gradients that are zero up to rounding).
  config = recipes.recipe('transformer_small', encoder_layers=1, decoder_layers=1,
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
  strategies.configure_cpu_devices(2)
  rng = np.random.default_rng(0)
  targets = rng.integers(2, 40, (8, 12)).astype(np.int32)
  targets[:4, 3:] = 0  # the first replica's half: 3 real tokens a row; the second's: 12
  source = rng.integers(2, 40, (8, 7)).astype(np.int32)
  decoder_input = np.pad(targets[:, :-1], [[0, 0], [1, 0]])
  config = recipes.recipe('transformer_small', encoder_layers=1, decoder_layers=1,
                                      d_model=32, num_heads=2, ffn=64)
  init = translation_training.build_model(config, 40).get_weights()
  single = translation_step(tf.distribute.get_strategy(), init, (source, decoder_input), targets)
  mirrored_strategy = strategies.build_strategy('mirrored')
  assert mirrored_strategy.num_replicas_in_sync == 2
  mirrored = translation_step(mirrored_strategy, init, (source, decoder_input), targets)
  moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
  print(f'replicas=2 moved={moved:.6g} max_diff={diff:.6g}')


def main():
  strategies.configure_cpu_devices(2)
  config = recipes.recipe('alexnet', batch_size=16, train_steps=10, momentum=0.9)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 24, 24, 3)).astype(np.float32)
  y = rng.integers(0, 10, 16).astype(np.int32)
  init = classifier.build_for(config).get_weights()
  single = one_step(tf.distribute.get_strategy(), config, init, x, y)
  mirrored_strategy = strategies.build_strategy('mirrored')
  assert mirrored_strategy.num_replicas_in_sync == 2
  mirrored = one_step(mirrored_strategy, config, init, x, y)
  moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
  print(f'replicas=2 moved={moved:.6g} max_diff={diff:.6g}')


AVERAGE_DECAY = 0.3  # min(d, (1 + n) / (10 + n)) is the warm-up's at steps 1-2, d from step 3


def averaged_network(strategy=None, seed=0):
  """Dense, batch norm (momentum 0.5: its statistics move fast) and logits, compiled with the
  recipe's optimizer and the weight average."""
  config = recipes.recipe('alexnet', learning_rate=0.1, momentum=0.9, lr_boundaries=(),
                          ema_decay=AVERAGE_DECAY)
  keras.utils.set_random_seed(seed)
  with (strategy or tf.distribute.get_strategy()).scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(momentum=0.5),
                              keras.layers.Dense(3, name='logits')])
    classifier.compile_model(model, config, steps=100)
  return model


def batches(start=0):
  """The training stream from batch `start` (8 examples a batch)."""
  rng = np.random.default_rng(0)
  x = rng.normal(1.0, 2.0, size=(80, 4)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices((x, np.arange(80) % 3)).batch(8).skip(start)


def state(model):
  """Every variable of the model (batch-norm statistics included), flat, in float64."""
  return np.concatenate([v.numpy().ravel() for v in model.variables]).astype(np.float64)


def train(model, start, steps):
  """Trains `steps` steps from batch `start`; returns the state after each."""
  states = []
  record = keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: states.append(state(model)))
  model.fit(batches(start), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False,
            callbacks=[record])
  return states


def average_and_weights(model):
  """The state with the average swapped in, then with it swapped back out."""
  model.optimizer.swap_average()
  average = state(model)
  model.optimizer.swap_average()
  return average, state(model)


def tf_average(initial, states, decay=AVERAGE_DECAY):
  """tf.train.ExponentialMovingAverage(decay, num_updates=step) in float64, from the initial
  values, applied after each step (n: the steps done)."""
  shadow = initial
  for n, current in enumerate(states, 1):
    shadow = shadow - (1.0 - min(decay, (1.0 + n) / (10.0 + n))) * (shadow - current)
  return shadow


def average_main():
  strategies.configure_cpu_devices(2)
  model = averaged_network(strategies.build_strategy('mirrored'))
  assert model.distribute_strategy.num_replicas_in_sync == 2
  initial = state(model)
  states = train(model, 0, 6)
  average, weights = average_and_weights(model)
  diff = float(np.abs(average - tf_average(initial, states)).max())
  moved = float(np.abs(average - states[-1]).max())
  print(f'replicas=2 moved={moved:.6g} max_diff={diff:.6g} '
        f'swapped_back={np.array_equal(weights, states[-1])}')


def predict_main():
  strategies.configure_cpu_devices(2)
  model = averaged_network(strategies.build_strategy('mirrored'))
  rng = np.random.default_rng(1)
  model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                     for w in model.get_weights()])  # batch-norm statistics far from 0 and 1
  x = rng.normal(size=(21, 4)).astype(np.float32)
  y = np.arange(21)
  expected = model(x, training=False).numpy()
  diff = 0.0
  for batch_size in (8, 7, 32):  # a partial last batch; batches of an odd size; one partial
    logits, labels = classifier.predict_logits(
        model, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size))
    assert logits.shape == expected.shape and np.array_equal(labels, y), (batch_size, labels)
    diff = max(diff, float(np.abs(logits - expected).max()))
  print(f'replicas=2 max_diff={diff:.6g}')


if __name__ == '__main__':
  {'translation': translation_main, 'average': average_main,
   'predict': predict_main}.get(sys.argv[1] if sys.argv[1:] else '', main)()
