"""Penultimate activations of chosen classes' examples, projected onto a trained model's plane."""
import numpy as np
import tensorflow as tf

import data
import models
from visualization.projection import plane_basis, project


def class_examples(config, split, classes, per_class, data_dir=None):
  """The first `per_class` examples of each class in `split`, through the evaluation chain."""
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
