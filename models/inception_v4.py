"""Inception-v4 as the paper trained it (its Appendix A.4): TF-slim's `nets/inception_v4.py` with
a scale (gamma) added to every batch norm, which slim's own lacks.

Every convolution is conv (no bias) + batch norm (decay 0.9997, epsilon 0.001, slim's
inception arg scope) + ReLU, its kernel drawn as slim's arg scope draws it (_conv_initializer);
the logits layers have slim's fully_connected defaults (Glorot uniform, zero bias), as Keras's
Dense. The auxiliary head (from Mixed_6h, weight 0.4 in the TPU reference and in the recipe)
needs views of at least AUX_HEAD_MIN_INPUT pixels; dropout keeps 0.8 of the pooled features, as
slim.
"""
import keras

from models.batch_norm import FusedBatchNormalization


# Standard deviation of a unit normal truncated at +-2 (Keras's VarianceScaling divides by it).
_TRUNCATED_STD = 0.87962566103423978
# The smallest square input whose Mixed_6h grid (5 x 5) holds the auxiliary head's 5x5 pool, as
# in slim, whose VALID pool fails on smaller grids too.
AUX_HEAD_MIN_INPUT = 107
MIN_INPUT = 75  # the smallest view its stride-2 'VALID' stages leave at least 1 x 1


def _conv_initializer():
  """slim.variance_scaling_initializer() (slim/nets/inception_utils.py, inception_arg_scope: the
  defaults factor 2.0, FAN_IN, uniform False). TF1's implementation
  (tensorflow/contrib/layers/python/layers/initializers.py) draws truncated_normal(0,
  sqrt(1.3 * 2 / fan_in)), cut at 2 of those deviations, so the kernel's standard deviation is
  0.8796 * sqrt(2.6 / fan_in) = 1.00295 sqrt(2 / fan_in); Keras's VarianceScaling divides by
  the exact 0.8796 instead of sqrt(1.3), so its scale is chosen to draw the same distribution."""
  return keras.initializers.VarianceScaling(2.0 * 1.3 * _TRUNCATED_STD ** 2, 'fan_in',
                                            'truncated_normal')


class _Arch:
  """What every layer of one network shares: the kernel regularizer and the width multiplier."""

  def __init__(self, weight_decay, width):
    self.regularizer = keras.regularizers.L2(0.5 * weight_decay) if weight_decay else None
    self.width = width

  def filters(self, n):
    return max(1, int(round(n * self.width)))


def _conv(x, filters, kernel, name, arch, strides=1, padding='same'):
  x = keras.layers.Conv2D(arch.filters(filters), kernel, strides, padding=padding,
                          use_bias=False, kernel_regularizer=arch.regularizer, name=name,
                          kernel_initializer=_conv_initializer())(x)
  x = FusedBatchNormalization(momentum=0.9997, epsilon=0.001, name=name + '_bn')(x)
  return keras.layers.ReLU(name=name + '_relu')(x)


def _max_pool(x, name, strides=2, padding='valid'):
  return keras.layers.MaxPooling2D(3, strides, padding=padding, name=name)(x)


def _concat(branches, name):
  return keras.layers.Concatenate(name=name)(branches)


def _stem(x, arch):
  x = _conv(x, 32, 3, 'Conv2d_1a_3x3', strides=2, padding='valid', arch=arch)
  x = _conv(x, 32, 3, 'Conv2d_2a_3x3', padding='valid', arch=arch)
  x = _conv(x, 64, 3, 'Conv2d_2b_3x3', arch=arch)
  x = _concat([_max_pool(x, 'Mixed_3a_pool'),
               _conv(x, 96, 3, 'Mixed_3a_conv', strides=2, padding='valid', arch=arch)],
              'Mixed_3a')
  b0 = _conv(_conv(x, 64, 1, 'Mixed_4a_b0_1x1', arch=arch), 96, 3, 'Mixed_4a_b0_3x3',
             padding='valid', arch=arch)
  b1 = _conv(x, 64, 1, 'Mixed_4a_b1_1x1', arch=arch)
  b1 = _conv(b1, 64, (1, 7), 'Mixed_4a_b1_1x7', arch=arch)
  b1 = _conv(b1, 64, (7, 1), 'Mixed_4a_b1_7x1', arch=arch)
  b1 = _conv(b1, 96, 3, 'Mixed_4a_b1_3x3', padding='valid', arch=arch)
  x = _concat([b0, b1], 'Mixed_4a')
  return _concat([_conv(x, 192, 3, 'Mixed_5a_conv', strides=2, padding='valid', arch=arch),
                  _max_pool(x, 'Mixed_5a_pool')], 'Mixed_5a')


def _avg_pool_conv(x, filters, name, arch):
  pooled = keras.layers.AveragePooling2D(3, 1, padding='same', name=name + '_pool')(x)
  return _conv(pooled, filters, 1, name + '_1x1', arch=arch)


def _block_a(x, name, arch):
  b1 = _conv(_conv(x, 64, 1, name + '_b1_1x1', arch=arch), 96, 3, name + '_b1_3x3', arch=arch)
  b2 = _conv(x, 64, 1, name + '_b2_1x1', arch=arch)
  b2 = _conv(_conv(b2, 96, 3, name + '_b2_3x3a', arch=arch), 96, 3, name + '_b2_3x3b', arch=arch)
  return _concat([_conv(x, 96, 1, name + '_b0_1x1', arch=arch), b1, b2,
                  _avg_pool_conv(x, 96, name + '_b3', arch)], name)


def _reduction_a(x, arch):
  b1 = _conv(x, 192, 1, 'Mixed_6a_b1_1x1', arch=arch)
  b1 = _conv(_conv(b1, 224, 3, 'Mixed_6a_b1_3x3a', arch=arch), 256, 3, 'Mixed_6a_b1_3x3b',
             strides=2, padding='valid', arch=arch)
  return _concat([_conv(x, 384, 3, 'Mixed_6a_b0_3x3', strides=2, padding='valid', arch=arch),
                  b1, _max_pool(x, 'Mixed_6a_pool')], 'Mixed_6a')


def _block_b(x, name, arch):
  b1 = _conv(x, 192, 1, name + '_b1_1x1', arch=arch)
  b1 = _conv(_conv(b1, 224, (1, 7), name + '_b1_1x7', arch=arch), 256, (7, 1), name + '_b1_7x1',
             arch=arch)
  b2 = _conv(x, 192, 1, name + '_b2_1x1', arch=arch)
  for i, (filters, kernel) in enumerate([(192, (7, 1)), (224, (1, 7)), (224, (7, 1)),
                                         (256, (1, 7))]):
    b2 = _conv(b2, filters, kernel, f'{name}_b2_{i}', arch=arch)
  return _concat([_conv(x, 384, 1, name + '_b0_1x1', arch=arch), b1, b2,
                  _avg_pool_conv(x, 128, name + '_b3', arch)], name)


def _reduction_b(x, arch):
  b0 = _conv(_conv(x, 192, 1, 'Mixed_7a_b0_1x1', arch=arch), 192, 3, 'Mixed_7a_b0_3x3',
             strides=2, padding='valid', arch=arch)
  b1 = _conv(x, 256, 1, 'Mixed_7a_b1_1x1', arch=arch)
  b1 = _conv(_conv(b1, 256, (1, 7), 'Mixed_7a_b1_1x7', arch=arch), 320, (7, 1),
             'Mixed_7a_b1_7x1', arch=arch)
  b1 = _conv(b1, 320, 3, 'Mixed_7a_b1_3x3', strides=2, padding='valid', arch=arch)
  return _concat([b0, b1, _max_pool(x, 'Mixed_7a_pool')], 'Mixed_7a')


def _split(x, name, arch):
  return [_conv(x, 256, (1, 3), name + '_1x3', arch=arch),
          _conv(x, 256, (3, 1), name + '_3x1', arch=arch)]


def _block_c(x, name, arch):
  b1 = _split(_conv(x, 384, 1, name + '_b1_1x1', arch=arch), name + '_b1', arch)
  b2 = _conv(x, 384, 1, name + '_b2_1x1', arch=arch)
  b2 = _conv(_conv(b2, 448, (3, 1), name + '_b2_3x1', arch=arch), 512, (1, 3), name + '_b2_1x3',
             arch=arch)
  b2 = _split(b2, name + '_b2_split', arch)
  return _concat([_conv(x, 256, 1, name + '_b0_1x1', arch=arch), *b1, *b2,
                  _avg_pool_conv(x, 256, name + '_b3', arch)], name)


def _aux_head(x, num_classes, arch):
  """slim's AuxLogits from Mixed_6h: 5x5/3 average pool, 1x1 128, 5x5 768 VALID, logits."""
  x = keras.layers.AveragePooling2D(5, 3, padding='valid', name='AuxLogits_pool')(x)
  x = _conv(x, 128, 1, 'AuxLogits_1x1', arch=arch)
  x = _conv(x, 768, x.shape[1], 'AuxLogits_5x5', padding='valid', arch=arch)
  x = keras.layers.Flatten(name='AuxLogits_flatten')(x)
  return keras.layers.Dense(num_classes, kernel_regularizer=arch.regularizer, dtype='float32',
                            name='aux_logits')(x)


def inception_v4(num_classes=1000, input_shape=(299, 299, 3), weight_decay=0.0,
                 dropout_keep=0.8, aux_head=False, width=1.0, blocks=(4, 7, 3)):
  """Inception-v4; returns logits (and the auxiliary logits as a second output if aux_head).

  Weight decay adds 0.5 * weight_decay * ||w||^2 for convolution and dense kernels (slim's
  arg scope regularizes weights, not batch-norm variables). width scales every convolution's
  filters (1: the paper's network; less for tests and small machines); blocks counts the A,
  B and C blocks (the paper's 4, 7, 3; fewer for tests).
  """
  arch = _Arch(weight_decay, width)
  inputs = keras.Input(input_shape)
  x = _stem(inputs, arch)
  for i in range(blocks[0]):
    x = _block_a(x, f'Mixed_5{"bcde"[i]}', arch)
  x = _reduction_a(x, arch)
  for i in range(blocks[1]):
    x = _block_b(x, f'Mixed_6{"bcdefgh"[i]}', arch)
  if aux_head and x.shape[1] < 5:
    raise ValueError(f'the auxiliary head needs inputs of at least {AUX_HEAD_MIN_INPUT} pixels '
                     f'(got {input_shape[0]}); build without it for smaller ones.')
  aux = _aux_head(x, num_classes, arch) if aux_head else None
  x = _reduction_b(x, arch)
  for i in range(blocks[2]):
    x = _block_c(x, f'Mixed_7{"bcd"[i]}', arch)
  x = keras.layers.GlobalAveragePooling2D(name='penultimate')(x)
  x = keras.layers.Dropout(1.0 - dropout_keep, name='Dropout_1b')(x)
  logits = keras.layers.Dense(num_classes, kernel_regularizer=arch.regularizer, dtype='float32',
                              name='logits')(x)
  return keras.Model(inputs, [logits, aux] if aux_head else logits, name='inception_v4')
