"""Penultimate activations of chosen classes' examples, projected onto a trained model's plane."""
import numpy as np
import tensorflow as tf

import data
from data.run_directory import section_results
import models
from models import classifier
from visualization.projection import plane_basis, project

RESULT = section_results.Kind('penultimate', 'penultimate_stats.json', ('penultimate.png',))


def class_examples(config, split, classes, per_class, data_dir=None):
  """The first `per_class` examples of each class in `split`, through the evaluation chain."""
  if data.DATASETS[config.dataset].streamed:
    return _streamed_class_examples(config, split, classes, per_class, data_dir)
  images, labels = data.load_split(config.dataset, split, data_dir, config.validation_size)
  index = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
  eval_chain = data.PREPROCESSING_CHAINS[config.preprocessing][1]
  return eval_chain(tf.cast(images[index], tf.float32)).numpy(), labels[index]


def project_splits(model, config, classes, per_class, splits=('train', 'validation'),
                   data_dir=None):
  """{split: (points [N, 2], labels [N])} in the plane of the model's templates for `classes`."""
  basis = plane_basis(models.templates(model), classes)
  features = models.penultimate_model(model)
  out = {}
  for split in splits:
    x, y = class_examples(config, split, classes, per_class, data_dir)
    out[split] = (project(features.predict(x, batch_size=500, verbose=0), basis), y)
  return out


def _streamed_class_examples(config, split, classes, per_class, data_dir):
  """The same from a streamed dataset (ImageNet): its evaluation pass, read until every class
  has `per_class` examples (or the split ends)."""
  wanted = tf.constant(classes, tf.int32)
  stream = classifier.split_dataset(config, data_dir, split, batch_size=256).unbatch().filter(
      lambda x, y: tf.reduce_any(tf.equal(y, wanted)))
  found = {c: [] for c in classes}
  for x, y in stream:
    if len(found[int(y)]) < per_class:
      found[int(y)].append(x.numpy())
    if all(len(v) == per_class for v in found.values()):
      break
  missing = [c for c in classes if not found[c]]
  if missing:
    raise data.DataError(f'split "{split}" of {config.dataset} has no example of class(es) '
                         f'{missing}; choose classes it holds.')
  labels = np.concatenate([[c] * len(found[c]) for c in classes]).astype(np.int32)
  return np.stack([x for c in classes for x in found[c]]), labels
