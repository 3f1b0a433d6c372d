"""Choosing the weights a run keeps by held-out accuracy, as the paper chose its Inception-v4
checkpoint (by accuracy on about 50,000 held-out training images).

At every checkpoint the weights that evaluation would use (the weight average when the
optimizer keeps one) are scored on the validation split; the best are kept as
best.weights.h5 with best.json (step, accuracy), which a resumed run reads to continue the
comparison. At the end the run saves and evaluates those instead of its last weights.
"""
import os

import keras
import numpy as np

from data.run_directory import run_files

BEST_WEIGHTS = 'best.weights.h5'
BEST_RECORD = 'best.json'


class BestOnValidation(keras.callbacks.Callback):
  """Scores `model` (whose variables the trained model holds) on validation() -> (logits,
  labels) after every checkpoint; only the chief writes."""

  def __init__(self, model, validation, run_dir, chief, log=print):
    super().__init__()
    self.classifier, self.validation, self.run_dir = model, validation, run_dir
    self.chief, self.log = chief, log
    record = os.path.join(run_dir, BEST_RECORD)
    self.best = run_files.read_json(record) if run_files.gfile.exists(record) else None

  def on_epoch_end(self, epoch, logs=None):
    optimizer = self.model.optimizer
    swap = getattr(optimizer, 'swap_average', lambda: None)
    swap()  # the average in place of the weights, if the optimizer keeps one
    try:
      self._score(int(optimizer.iterations.numpy()))
    finally:
      swap()  # training continues from its own weights

  def _score(self, step):
    logits, labels = self.validation()
    accuracy = float(np.mean(np.argmax(logits, -1) == labels))
    if self.best is None or accuracy > self.best['accuracy']:
      self.best = {'step': step, 'accuracy': accuracy}
      if self.chief:
        self.classifier.save_weights(os.path.join(self.run_dir, BEST_WEIGHTS))
        run_files.write_json(os.path.join(self.run_dir, BEST_RECORD), self.best)
    self.log(f'validation accuracy {accuracy:.4f} at step {step} (best {self.best["accuracy"]:.4f}'
             f' at step {self.best["step"]})', flush=True)


def best_weights(run_dir):
  """The path of the kept weights and their record, or (None, None) before the first score."""
  path = os.path.join(run_dir, BEST_WEIGHTS)
  if not run_files.gfile.exists(path):
    return None, None
  return path, run_files.read_json(os.path.join(run_dir, BEST_RECORD))
