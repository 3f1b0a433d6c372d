"""Classifiers of the paper, the smoothed-label loss, the recipe optimizer and training loop.

Every classifier is a functional Keras model whose final dense layer is named `logits`;
its input is the penultimate representation (see `penultimate_model` and `templates`).
"""
import keras
import numpy as np

from models.alexnet import alexnet
from models.fc import fc
from models.inception_v4 import inception_v4
from models.losses import SmoothedCrossEntropy, smooth_labels
from models.optimizers import MomentumSGD
from models import recipes
from models.recipes import recipe, TrainConfig
from models.resnet import resnet56

# The model registry: name -> builder(config, num_classes, input_shape), each a classifier
# whose final dense layer is `logits` (weight decay included as regularization losses). A new
# model is a builder here and its recipe in models/recipes.py.
BUILDERS = {
    'fc': lambda config, num_classes, input_shape: fc(
        num_classes, input_shape, width=config.width, dropout=config.dropout,
        init_variance=config.init_variance),
    'alexnet': lambda config, num_classes, input_shape: alexnet(
        num_classes, input_shape, weight_decay=config.weight_decay),
    'resnet56': lambda config, num_classes, input_shape: resnet56(
        num_classes, input_shape, weight_decay=config.weight_decay,
        blocks_per_stage=config.resnet_blocks),
    # [logits, auxiliary logits] with aux_loss_weight
    'inception_v4': lambda config, num_classes, input_shape: inception_v4(
        num_classes, input_shape, weight_decay=config.weight_decay,
        aux_head=recipes.has_aux_head(config), width=config.width_multiplier),
}
MODELS = tuple(BUILDERS)


def build_model(config, num_classes, input_shape):
  """The classifier a TrainConfig describes."""
  if config.model not in BUILDERS:
    raise ValueError(f'unknown model "{config.model}"; choose one of {", ".join(MODELS)}.')
  return BUILDERS[config.model](config, num_classes, input_shape)


def penultimate_model(model):
  """Maps inputs to the activations that feed the `logits` layer (inference mode)."""
  return keras.Model(model.inputs, model.get_layer('logits').input)


def templates(model):
  """The last layer's weights with the bias appended as a last row: [D + 1, K]."""
  kernel, bias = (np.asarray(w) for w in model.get_layer('logits').get_weights())
  return np.concatenate([kernel, bias[None, :]], axis=0)
