"""Run as a script: one ResNet-8 step (the project's batch norm) on 2 mirrored logical CPUs.

The batch norm (models/batch_norm.py) is not synchronized across replicas, as tensor2tensor's
per-core batch norm on TPUs was not: each replica normalizes its half of the global batch by
that half's statistics. So a mirrored step equals, on one device, the step on the mean of the
two halves' losses, each half normalized alone ("ghost batches") -- not the step on the whole
batch. The moving statistics are Keras's, whose variables carry no cross-replica aggregation:
each replica updates its own copy, and what checkpoints, weights files and evaluation read (the
first copy) holds the first half's statistics alone.

Prints one JSON line of largest absolute differences. A separate process is needed because the
CPU must be split into logical devices before TensorFlow initializes.
"""
import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from models import classifier, recipes, strategies
from models.batch_norm import FusedBatchNormalization

# clip_norm 0: Keras 3.15 clips each replica's gradient before the all-reduce (optimizer.apply
# clips, then _backend_update_step all-reduces), a second per-replica effect besides the norm's.
CONFIG = recipes.recipe('resnet56', resnet_blocks=1, batch_size=8, train_steps=10, clip_norm=0.0)


def _build(strategy, init=None):
  with strategy.scope():
    model = classifier.build_for(CONFIG)
    classifier.compile_model(model, CONFIG, steps=CONFIG.train_steps)
  if init is not None:
    model.set_weights(init)
  return model


def _fit_one_step(strategy, init, x, y):
  model = _build(strategy, init)
  ds = tf.data.Dataset.from_tensors((x, y)).repeat()
  model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
  return model


def _ghost_batch_step(init, halves):
  """One step on one device: the mean of the halves' losses, each half normalized alone."""
  model = _build(tf.distribute.get_strategy(), init)
  loss_fn = classifier.build_loss(CONFIG)
  with tf.GradientTape() as tape:
    loss = tf.add_n([loss_fn(y, model(x, training=True)) for x, y in halves]) / len(halves)
    loss += tf.add_n(model.losses)  # weight decay, as Keras's train step adds it
  grads = tape.gradient(loss, model.trainable_variables)
  model.optimizer.apply(grads, model.trainable_variables)
  return model


def _moving_statistics(model):
  return [v.numpy() for layer in model.layers if isinstance(layer, FusedBatchNormalization)
          for v in (layer.moving_mean, layer.moving_variance)]


def _trainable(model):
  return [v.numpy() for v in model.trainable_variables]


def _max_diff(a, b):
  return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


def main():
  strategies.configure_cpu_devices(2)
  rng = np.random.default_rng(0)
  shape = classifier.input_shape(CONFIG)
  x = rng.normal(size=(8, *shape)).astype(np.float32)
  x[4:] = 3.0 * x[4:] + 2.0  # the second replica's half: other statistics than the first's
  y = rng.integers(0, 100, 8).astype(np.int32)
  halves = [(x[:4], y[:4]), (x[4:], y[4:])]
  init = _build(tf.distribute.get_strategy()).get_weights()

  strategy = strategies.build_strategy('mirrored')
  assert strategy.num_replicas_in_sync == 2
  mirrored = _fit_one_step(strategy, init, x, y)
  whole = _fit_one_step(tf.distribute.get_strategy(), init, x, y)
  ghost = _ghost_batch_step(init, halves)
  first_half = _build(tf.distribute.get_strategy(), init)
  first_half(halves[0][0], training=True)  # only updates the moving statistics

  # The first batch norm by hand: moving = momentum * initial + (1 - momentum) * batch moment.
  conv = first_half.get_layer('init_conv')(halves[0][0]).numpy()
  bn = first_half.get_layer('init_bn')
  flat = conv.reshape(-1, conv.shape[-1])
  by_hand = [bn.momentum * init_value + (1 - bn.momentum) * moment
             for init_value, moment in ((0.0, flat.mean(0)), (1.0, flat.var(0)))]
  mirrored_bn = mirrored.get_layer('init_bn')
  report = {
      'moved': _max_diff(_trainable(ghost), [w for w, v in zip(init, ghost.weights)
                                             if v.trainable]),
      'trainable_vs_ghost': _max_diff(_trainable(mirrored), _trainable(ghost)),
      'trainable_vs_whole': _max_diff(_trainable(mirrored), _trainable(whole)),
      'moving_vs_first_half': _max_diff(_moving_statistics(mirrored),
                                        _moving_statistics(first_half)),
      'moving_vs_whole': _max_diff(_moving_statistics(mirrored), _moving_statistics(whole)),
      'first_bn_vs_numpy': _max_diff([mirrored_bn.moving_mean.numpy(),
                                      mirrored_bn.moving_variance.numpy()], by_hand),
  }
  print(json.dumps(report))


if __name__ == '__main__':
  main()
