"""Classifiers of the paper, the smoothed-label loss, the recipe optimizer and training loop.

Every classifier is a functional Keras model whose final dense layer is named `logits`;
its input is the penultimate representation (see `penultimate_model` and `templates`).
"""
import keras
import numpy as np

from models.alexnet import alexnet
from models.fc import fc
from models.losses import SmoothedCrossEntropy, smooth_labels
from models.optimizers import MomentumSGD
from models.recipes import recipe, TrainConfig
from models.resnet import resnet56

MODELS = ('fc', 'alexnet', 'resnet56')


def build_model(config, num_classes, input_shape):
  """The classifier a TrainConfig describes (weight decay included as regularization losses)."""
  if config.model == 'fc':
    return fc(num_classes, input_shape, width=config.width, dropout=config.dropout,
              init_variance=config.init_variance)
  if config.model == 'alexnet':
    return alexnet(num_classes, input_shape, weight_decay=config.weight_decay)
  if config.model == 'resnet56':
    return resnet56(num_classes, input_shape, weight_decay=config.weight_decay)
  raise ValueError(f'unknown model "{config.model}"; choose one of {", ".join(MODELS)}.')


def penultimate_model(model):
  """Maps inputs to the activations that feed the `logits` layer (inference mode)."""
  return keras.Model(model.inputs, model.get_layer('logits').input)


def templates(model):
  """The last layer's weights with the bias appended as a last row: [D + 1, K]."""
  kernel, bias = (np.asarray(w) for w in model.get_layer('logits').get_weights())
  return np.concatenate([kernel, bias[None, :]], axis=0)
