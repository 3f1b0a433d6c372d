"""Steady-state step timing shared by the benchmark binaries and the sweep plans."""
import time

import keras
import numpy as np
import tensorflow as tf


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
  from models import training  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  keras.config.set_dtype_policy(config.dtype_policy)
  try:
    with strategy.scope():
      model = training.build_for(config)
      training.compile_model(model, config, 1000, jit_compile,
                             steps_per_execution=steps_per_execution)
    shape = (config.batch_size,) + model.input_shape[1:]
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = np.zeros(config.batch_size, np.int32)
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    return steady_step_seconds(model, dataset, steps, warmup), model
  finally:
    keras.config.set_dtype_policy('float32')


def inference_seconds(model, batch_size, repeats=5):
  """Median seconds of one inference-mode forward pass of a batch (a teacher on the fly)."""
  x = tf.constant(np.random.default_rng(0).normal(
      size=(batch_size,) + model.input_shape[1:]).astype(np.float32))
  call = tf.function(lambda v: model(v, training=False))
  call(x)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call(x).numpy()
    times.append(time.perf_counter() - start)
  return float(np.median(times))
