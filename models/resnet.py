"""ResNet-56 v2 (pre-activation) as tensor2tensor builds it for CIFAR."""
import keras

from models.batch_norm import FusedBatchNormalization

_BN = dict(momentum=0.9, epsilon=1e-5)


def _conv(filters, kernel, stride, reg, name):
  """Conv with tensor2tensor's fixed padding on strided convs (SAME differs on even inputs)."""
  conv = keras.layers.Conv2D(filters, kernel, stride, padding='same' if stride == 1 else 'valid',
                             use_bias=False, kernel_regularizer=reg, name=name,
                             kernel_initializer=keras.initializers.VarianceScaling(
                                 1.0, 'fan_in', 'truncated_normal'))
  if stride == 1:
    return conv
  pad = (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2
  return lambda x: conv(keras.layers.ZeroPadding2D((pad, pad), name=name + '_pad')(x))


def _bn(reg, name):
  return FusedBatchNormalization(beta_regularizer=reg, gamma_regularizer=reg, name=name, **_BN)


def resnet56(num_classes=10, input_shape=(32, 32, 3), weight_decay=0.0, blocks_per_stage=9):
  """3 stages x 9 basic blocks (16/32/64 filters); 64-d global-pool penultimate layer.

  Weight decay adds 0.5 * weight_decay * ||v||^2 for every variable except biases
  (BN scale and offset included), as in the paper's recipe.
  """
  reg = keras.regularizers.L2(0.5 * weight_decay) if weight_decay else None
  inputs = keras.Input(input_shape)
  x = _conv(16, 3, 1, reg, 'init_conv')(inputs)
  x = keras.layers.ReLU()(_bn(reg, 'init_bn')(x))
  for stage, (filters, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
    for block in range(blocks_per_stage):
      name = f'stage{stage}_block{block}'
      s = stride if block == 0 else 1
      pre = keras.layers.ReLU()(_bn(reg, name + '_bn1')(x))
      if block == 0:
        shortcut = _bn(reg, name + '_proj_bn')(_conv(filters, 1, s, reg, name + '_proj')(pre))
      else:
        shortcut = x
      y = _conv(filters, 3, s, reg, name + '_conv1')(pre)
      y = keras.layers.ReLU()(_bn(reg, name + '_bn2')(y))
      y = _conv(filters, 3, 1, reg, name + '_conv2')(y)
      x = keras.layers.Add()([y, shortcut])
  x = keras.layers.GlobalAveragePooling2D(name='penultimate')(x)
  logits = keras.layers.Dense(num_classes, kernel_regularizer=reg, name='logits',
                              dtype='float32')(x)  # float32 logits under any policy
  return keras.Model(inputs, logits, name='resnet56')
