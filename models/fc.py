"""Fully connected MNIST network (Hinton et al. distillation teacher 2x1200 / student 2x800)."""
import math

import keras


def fc(num_classes, input_shape, width=1200, dropout=0.0, init_variance=0.0009):
  """Two ReLU hidden layers; zero-mean Gaussian init of the given variance, zero biases.

  The default, standard deviation 0.03, is the reading of the paper's "variance 0.03" that
  reproduces its accuracy (see models/recipes.py).
  """
  init = keras.initializers.RandomNormal(stddev=math.sqrt(init_variance))
  inputs = keras.Input(input_shape)
  x = keras.layers.Flatten()(inputs)
  for i in (1, 2):
    x = keras.layers.Dense(width, activation='relu', kernel_initializer=init,
                           name=f'hidden{i}')(x)
    if dropout:
      x = keras.layers.Dropout(dropout, name=f'dropout{i}')(x)
  logits = keras.layers.Dense(num_classes, kernel_initializer=init, name='logits',
                              dtype='float32')(x)  # float32 logits under any policy
  return keras.Model(inputs, logits, name=f'fc_{width}')
