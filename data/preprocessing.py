"""The paper's augmentation chains, applied to whole batches with stateless randomness.

Batched ops keep the pipeline fast on 2 CPU cores, and seeding every batch from
``(seed, step)`` makes the stream a pure function of the step, so a resumed run sees
exactly the batches an uninterrupted run would.
"""
import tensorflow as tf

MNIST_SHIFT = 2  # the MNIST teacher's shifts of up to +-2 px: 25 equiprobable centerings.


def per_image_standardization(images):
  """(x - mean) / max(std, 1/sqrt(n)) per image, as tf.image.per_image_standardization."""
  n = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
  mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
  std = tf.math.reduce_std(images, axis=[1, 2, 3], keepdims=True)
  return (images - mean) / tf.maximum(std, tf.math.rsqrt(n))


def crop(images, offset_y, offset_x, height, width):
  """Per-image crops at integer offsets ([B] each), gathered without interpolation."""
  rows = offset_y[:, None] + tf.range(height)[None, :]
  cols = offset_x[:, None] + tf.range(width)[None, :]
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


def _random_crop(images, size, seed):
  batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
  seeds = tf.random.experimental.stateless_split(seed, 2)
  oy = tf.random.stateless_uniform([batch], seeds[0], 0, height - size + 1, dtype=tf.int32)
  ox = tf.random.stateless_uniform([batch], seeds[1], 0, width - size + 1, dtype=tf.int32)
  return crop(images, oy, ox, size, size)


def central_crop(images, size):
  batch = tf.shape(images)[0]
  oy = tf.fill([batch], (tf.shape(images)[1] - size) // 2)
  ox = tf.fill([batch], (tf.shape(images)[2] - size) // 2)
  return crop(images, oy, ox, size, size)


def _random_flip(images, seed):
  flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5
  return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def _per_image_uniform(images, seed, low, high):
  return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed, low, high)


def alexnet_cifar_train(images, seed):
  """TF CIFAR-10 tutorial: crop 24, flip, brightness 63, contrast [0.2, 1.8], standardize."""
  s = tf.random.experimental.stateless_split(seed, 4)
  x = _random_flip(_random_crop(images, 24, s[0]), s[1])
  x = x + _per_image_uniform(x, s[2], -63.0, 63.0)
  mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # adjust_contrast: per channel mean
  x = (x - mean) * _per_image_uniform(x, s[3], 0.2, 1.8) + mean
  return per_image_standardization(x)


def alexnet_cifar_eval(images, seed=None):
  del seed
  return per_image_standardization(central_crop(images, 24))


def resnet_cifar_train(images, seed):
  """tensor2tensor CIFAR: pad to 40, random 32x32 crop, flip, standardize."""
  s = tf.random.experimental.stateless_split(seed, 2)
  x = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
  return per_image_standardization(_random_flip(_random_crop(x, 32, s[0]), s[1]))


def resnet_cifar_eval(images, seed=None):
  del seed
  return per_image_standardization(images)


def unit_range(images, seed=None):
  """MNIST: pixels scaled to [0, 1], no augmentation (the MNIST student and all evals)."""
  del seed
  return images / 255.0


def mnist_shift_train(images, seed):
  """MNIST teacher: shift by (dy, dx) in {-2..2}^2, zero fill, pixels in [0, 1]."""
  padded = tf.pad(images, [[0, 0], [MNIST_SHIFT] * 2, [MNIST_SHIFT] * 2, [0, 0]])
  return unit_range(_random_crop(padded, tf.shape(images)[1], seed))


# preprocessing name -> (training chain, evaluation chain)
CHAINS = {
    'alexnet_cifar': (alexnet_cifar_train, alexnet_cifar_eval),
    'resnet_cifar': (resnet_cifar_train, resnet_cifar_eval),
    'mnist_shift': (mnist_shift_train, unit_range),
    'mnist': (unit_range, unit_range),
}

# preprocessing name -> shape of the images it produces (the model's input shape)
OUTPUT_SHAPES = {'alexnet_cifar': (24, 24, 3), 'resnet_cifar': (32, 32, 3),
                 'mnist_shift': (28, 28, 1), 'mnist': (28, 28, 1)}
