"""Steady-state step timing and achieved FLOP rates, shared by the benchmark binaries and the
sweep plans."""
import math
import time

import keras
import numpy as np
import tensorflow as tf

from models import classifier, trainer


def steady_step_seconds(model, dataset, steps, warmup=5):
  """Median seconds between consecutive training-step ends, after `warmup` steps.

  Whole fit() calls stall for seconds at their start and return, which made earlier figures
  swing 2x; the median step interval does not see those stalls. With steps_per_execution N the
  callbacks see every N-th step: the median is over calls of N steps (at least 8), divided by N.
  """
  ends = []
  clock = keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
  per_call = model.steps_per_execution
  warm_calls, timed_calls = -(-warmup // per_call), max(-(-steps // per_call), 8)
  model.fit(dataset, steps_per_epoch=(warm_calls + timed_calls) * per_call, epochs=1,
            verbose=0, shuffle=False, callbacks=[clock])
  return float(np.median(np.diff(ends[warm_calls:]))) / per_call


def recipe_step_seconds(config, strategy, steps, warmup=5, jit_compile=False,
                        steps_per_execution=1):
  """Seconds per training step of config's model, optimizer and batch size on one cached
  synthetic batch: the model's step cost alone, without the input pipeline."""

  def build():
    model = classifier.build_for(config)
    classifier.compile_model(model, config, 1000, jit_compile,
                           steps_per_execution=steps_per_execution)
    return model
  model = trainer.build_under_policy(config, strategy, build)
  shape = (config.batch_size,) + model.input_shape[1:]
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  y = np.zeros(config.batch_size, np.int32)
  dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
  return steady_step_seconds(model, dataset, steps, warmup), model


def inference_seconds(model, batch_size, repeats=5):
  """Median seconds of one inference-mode forward pass of a batch (a teacher on the fly)."""
  x = tf.constant(np.random.default_rng(0).normal(
      size=(batch_size,) + model.input_shape[1:]).astype(np.float32))
  call = tf.function(lambda v: model(v, training=False))
  return median_seconds(lambda: call(x).numpy(), repeats)


def call_seconds(run, repeats=3):
  """Wall times of `repeats` calls of `run` after one warm-up call."""
  run()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return times


def median_seconds(run, repeats=3):
  return float(np.median(call_seconds(run, repeats)))


def matmul_peak_flops(dtype='float32', size=4096, repeats=5):
  """FLOP/s of the fastest of `repeats` size x size tf.matmul calls in `dtype` in this process:
  the peak that the benchmarks' achieved rates are set against. The fastest, as a peak is: the
  median of three measured 396 GFLOP/s in one run against 506-510 in the two runs beside it."""
  square = tf.cast(tf.random.stateless_normal([size, size], (0, 0)), dtype)
  return 2 * size ** 3 / min(call_seconds(lambda: tf.matmul(square, square)[0, 0].numpy(),
                                          repeats))


def training_flops(model, batch_size):
  """Convolution and matmul FLOPs (2 per multiply-add) of one training step of `batch_size`.

  Each Conv2D and Dense layer costs its forward pass, its weight gradient and its input
  gradient, the same multiply-adds each, except the first such layer when nothing with weights
  comes before it: no one needs the gradient of the model's input, and TensorFlow prunes it.
  Batch norm, pooling and elementwise ops are left out, as in the usual FLOP counts.
  """
  total, weights_before = 0, False
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
      # Output positions x kernel size: a Dense on [..., d] applies its kernel at every position.
      macs = math.prod(layer.output.shape[1:-1]) * math.prod(layer.kernel.shape)
      total += 2 * batch_size * macs * (3 if weights_before else 2)
    weights_before = weights_before or bool(layer.trainable_weights)
  return total
