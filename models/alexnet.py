"""The TensorFlow CIFAR-10 tutorial network ("AlexNet" in the paper), layer for layer."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable('models')
class LocalResponseNormalization(keras.layers.Layer):
  """tf.nn.local_response_normalization; Keras has no LRN layer.

  TF sums squares over 2 * depth_radius + 1 channels and does not divide alpha by the
  window size, which is why the tutorial passes alpha = 0.001 / 9. TensorFlow has no bfloat16
  CPU kernel for it, so the network builds it with dtype float32 under any policy.
  """

  def __init__(self, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, **kwargs):
    super().__init__(**kwargs)
    self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

  def call(self, x):
    return tf.nn.local_response_normalization(x, self.depth_radius, self.bias, self.alpha,
                                              self.beta)

  def get_config(self):
    return dict(super().get_config(), depth_radius=self.depth_radius, bias=self.bias,
                alpha=self.alpha, beta=self.beta)


DECAYED_LAYERS = ('dense384', 'dense192')  # the tutorial's weight-decayed layers


def alexnet(num_classes=10, input_shape=(24, 24, 3), weight_decay=0.0,
            decayed_layers=DECAYED_LAYERS):
  """conv-pool-LRN, conv-LRN-pool, dense 384, dense 192 (penultimate), logits.

  Weight decay adds 0.5 * weight_decay * ||W||^2 for the kernels of `decayed_layers`.
  """
  def normal(std):
    return keras.initializers.TruncatedNormal(stddev=std)

  def dense(units, std, bias, name, activation='relu', dtype=None):
    reg = keras.regularizers.L2(0.5 * weight_decay) if weight_decay and name in decayed_layers \
        else None
    return keras.layers.Dense(units, activation=activation, kernel_initializer=normal(std),
                              bias_initializer=keras.initializers.Constant(bias),
                              kernel_regularizer=reg, name=name, dtype=dtype)

  inputs = keras.Input(input_shape)
  x = keras.layers.Conv2D(64, 5, padding='same', activation='relu', kernel_initializer=normal(0.05),
                          name='conv1')(inputs)
  x = keras.layers.MaxPooling2D(3, 2, padding='same', name='pool1')(x)
  x = LocalResponseNormalization(name='norm1', dtype='float32')(x)
  x = keras.layers.Conv2D(64, 5, padding='same', activation='relu', kernel_initializer=normal(0.05),
                          bias_initializer=keras.initializers.Constant(0.1), name='conv2')(x)
  x = LocalResponseNormalization(name='norm2', dtype='float32')(x)
  x = keras.layers.MaxPooling2D(3, 2, padding='same', name='pool2')(x)
  x = keras.layers.Flatten()(x)
  x = dense(384, 0.04, 0.1, 'dense384')(x)
  x = dense(192, 0.04, 0.1, 'dense192')(x)
  logits = dense(num_classes, 1 / 192.0, 0.0, 'logits', activation=None,
                 dtype='float32')(x)  # float32 logits under any policy
  return keras.Model(inputs, logits, name='alexnet')
