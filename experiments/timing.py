"""Steady-state step timing shared by the benchmark binaries."""
import time

import keras
import numpy as np


def steady_step_seconds(model, dataset, steps, warmup=5):
  """Median seconds between consecutive training-step ends, after `warmup` steps.

  Whole fit() calls stall for seconds at their start and return, which made earlier figures
  swing 2x; the median step interval does not see those stalls.
  """
  ends = []
  clock = keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
  model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, shuffle=False,
            callbacks=[clock])
  return float(np.median(np.diff(ends[warmup:])))
