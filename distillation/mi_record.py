"""Mutual information recorded during training (paper Figure 6): a fixed set of training
examples of two classes, each under L + 1 independent random augmentations from the model's own
training chain (every example its own crop and flip), the network in inference mode.

The record is mutual_information.json in the run directory: the settings and one point per
estimated step. A resumed run skips the steps already recorded, so nothing is lost or computed
twice; only the chief writes it.
"""
import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

import data
from data import preprocessing
from data.run_directory import run_files, section_results
from distillation.mutual_information import mutual_information
from models import classifier, trainer

RECORD = 'mutual_information.json'
# Figure 6 of a section (experiments.mutual_information): the runs' records side by side.
FIGURE6 = section_results.Kind('mutual_information', 'mutual_information_points.json',
                               ('mutual_information.png',))


def select_examples(dataset, classes, per_class, data_dir=None, validation_size=None):
  """(images uint8 [N], labels [N]): the first `per_class` training examples of each class."""
  images, labels = data.load_split(dataset, 'train', data_dir, validation_size)
  chosen = []
  for c in classes:
    where = np.flatnonzero(labels == c)[:per_class]
    if len(where) < per_class:
      raise ValueError(f'class {c} of {dataset} has only {len(where)} training examples; '
                       f'lower --examples_per_class below {per_class}.')
    chosen.append(where)
  chosen = np.concatenate(chosen)
  return images[chosen], labels[chosen]


def augmented_views(images, chain, num_draws, seed):
  """[num_draws] batches of the training chain's views; draw d is seeded by (seed, d)."""
  train = preprocessing.CHAINS[chain][0]
  x = tf.cast(tf.constant(images), tf.float32)
  return [train(x, tf.constant([seed, d], tf.int64)) for d in range(num_draws)]


def logit_differences(model, views, classes, batch_size=500):
  """[N, num_draws] of z_a - z_b, the network in inference mode."""
  a, b = classes
  columns = []
  for view in views:
    logits = np.concatenate([model(view[i:i + batch_size], training=False).numpy()
                             for i in range(0, int(view.shape[0]), batch_size)])
    columns.append(logits[:, a].astype(np.float64) - logits[:, b])
  return np.stack(columns, axis=1)


class MutualInformationRecord(keras.callbacks.Callback):
  """Estimates I_hat at step 0 and every `every` steps into `output_dir`/mutual_information.json."""

  def __init__(self, output_dir, images, classes, chain, every, num_draws=5, seed=0,
               in_sample=False, chief=True, log_dir=None):
    super().__init__()
    self.path = os.path.join(output_dir, RECORD)
    self.settings = {'classes': [int(c) for c in classes], 'num_examples': int(len(images)),
                     'num_draws': int(num_draws), 'every': int(every), 'seed': int(seed),
                     'in_sample': bool(in_sample), 'chain': chain}
    self.views = augmented_views(images, chain, num_draws + 1, seed)
    self.classes, self.every, self.in_sample, self.chief = classes, every, in_sample, chief
    self.points = load_record(output_dir, self.settings)['points']
    self.writer = tf.summary.create_file_writer(log_dir) if log_dir and chief else None

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def _estimate(self, step):
    draws = logit_differences(self.model, self.views, self.classes)
    value = mutual_information(draws, self.in_sample)
    self.points.append({'step': step, 'mutual_information': value})
    self.points.sort(key=lambda p: p['step'])
    if self.chief:
      run_files.write_json(self.path, {'settings': self.settings, 'points': self.points})
    if self.writer:
      with self.writer.as_default():
        tf.summary.scalar('mutual_information', value, step=step)

  def on_train_begin(self, logs=None):
    if self.every % self.model.steps_per_execution:  # it would see none of its steps
      raise ValueError(f'the mutual-information record every {self.every} steps needs '
                       f'--steps_per_execution ({self.model.steps_per_execution}) to divide '
                       f'{self.every}; choose a divisor.')
    start = self._step()
    # Points past the step this run starts from were made by a stretch of training whose
    # checkpoint is lost (a kill, a deleted checkpoint folder): this run recomputes them.
    self.points = [p for p in self.points if 0 < start and p['step'] <= start]
    if start == 0:
      self._estimate(0)

  def on_train_batch_end(self, batch, logs=None):
    step = self._step()
    if step % self.every == 0:
      self._estimate(step)


def recorder(config, run_dir, classes, every, data_dir=None, examples_per_class=300, num_draws=5,
             seed=0, in_sample=False):
  """callbacks(chief) for classifier.train_and_evaluate: the run's record of I_hat for `classes`
  (the first `examples_per_class` training examples of each), every `every` steps."""
  images, _ = select_examples(config.dataset, classes, examples_per_class, data_dir,
                              config.validation_size)
  return lambda chief: [MutualInformationRecord(
      run_dir, images, classes, config.preprocessing, every, num_draws, seed, in_sample, chief,
      os.path.join(run_dir, 'tensorboard', 'mutual_information'))]


def at_initialization(config, seeds, images, classes, num_draws=5, seed=0, in_sample=False):
  """[I_hat] of the config's network freshly initialized with each of `seeds`, as a run with that
  seed starts (the same draws as the record's): how much Figure 6's step-0 value depends on the
  initialization alone."""
  views = augmented_views(images, config.preprocessing, num_draws + 1, seed)
  values = []
  for init_seed in seeds:
    seeded = dataclasses.replace(config, seed=init_seed)
    model = trainer.build_under_policy(seeded, tf.distribute.get_strategy(),
                                        lambda: classifier.build_for(seeded))
    values.append(mutual_information(logit_differences(model, views, classes), in_sample))
  return values


def load_record(run_dir, settings=None):
  """The record of a run ({'settings', 'points'}; empty if none). With `settings`, a record
  made with other settings is refused rather than continued."""
  path = os.path.join(run_dir, RECORD)
  if not run_files.gfile.exists(path):
    return {'settings': settings, 'points': []}
  record = run_files.read_json(path)
  if settings is not None and record['settings'] != settings:
    differing = sorted(k for k in settings if record['settings'].get(k) != settings[k])
    raise run_files.RunDirError(f'{path} was recorded with other settings ({", ".join(differing)}'
                                '); use a new --output_dir or the same settings.')
  return record
