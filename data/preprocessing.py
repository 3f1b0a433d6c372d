"""The paper's augmentation chains, applied to whole batches with stateless randomness.

Batched ops keep the pipeline fast on 2 CPU cores, and seeding every batch from
``(seed, step)`` makes the stream a pure function of the step, so a resumed run sees
exactly the batches an uninterrupted run would.
"""
import tensorflow as tf

from data import inception_preprocessing

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
  if images.shape[-1] != 1:
    return tf.gather(images, cols, axis=2, batch_dims=1)
  # One channel: a column gather would copy single pixels (3.2 ms a batch of 512 MNIST images
  # on a Zen 5 core); gathering rows of the transposed images copies whole rows (1.3 ms).
  columns_first = tf.transpose(images[..., 0], [0, 2, 1])
  return tf.transpose(tf.gather(columns_first, cols, axis=1, batch_dims=1), [0, 2, 1])[..., None]


def _crop_offsets(images, size, seed):
  """Per-image random offsets (oy, ox) of a size x size window, each in [0, side - size]."""
  batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
  seeds = tf.random.experimental.stateless_split(seed, 2)
  oy = tf.random.stateless_uniform([batch], seeds[0], 0, height - size + 1, dtype=tf.int32)
  ox = tf.random.stateless_uniform([batch], seeds[1], 0, width - size + 1, dtype=tf.int32)
  return oy, ox


def _random_crop(images, size, seed):
  return crop(images, *_crop_offsets(images, size, seed), size, size)


def central_crop(images, size):
  batch = tf.shape(images)[0]
  oy = tf.fill([batch], (tf.shape(images)[1] - size) // 2)
  ox = tf.fill([batch], (tf.shape(images)[2] - size) // 2)
  return crop(images, oy, ox, size, size)


def _flip_mask(images, seed):
  return tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5


def _flip(images, mask):
  return tf.where(mask[:, None, None, None], tf.reverse(images, axis=[2]), images)


def _random_flip(images, seed):
  return _flip(images, _flip_mask(images, seed))


def _per_image_uniform(images, seed, low, high):
  return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed, low, high)


def alexnet_cifar_train(images, seed):
  """TF CIFAR-10 tutorial: crop 24, flip, brightness 63, contrast [0.2, 1.8], standardize."""
  return _alexnet_cifar_views(images, seed, with_resnet_view=False)[0]


def _alexnet_cifar_views(images, seed, with_resnet_view):
  """The AlexNet view and, if asked, the ResNet-56 view drawn from the same random numbers.

  The ResNet chain pads 32x32 images to 40 and crops 32 at an offset in [0, 8]^2; AlexNet's
  crops 24 at an offset in [0, 8]^2. Using the same offset and flip for both, the AlexNet crop
  is exactly the central 24x24 of the ResNet view (before the photometric distortions, which
  the ResNet teacher never trained with and does not get).
  """
  s = tf.random.experimental.stateless_split(seed, 4)
  oy, ox = _crop_offsets(images, 24, s[0])
  flip = _flip_mask(images, s[1])
  x = _flip(crop(images, oy, ox, 24, 24), flip)
  x = x + _per_image_uniform(x, s[2], -63.0, 63.0)
  mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # adjust_contrast: per channel mean
  x = (x - mean) * _per_image_uniform(x, s[3], 0.2, 1.8) + mean
  if not with_resnet_view:
    return per_image_standardization(x), None
  padded = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
  teacher = _flip(crop(padded, oy, ox, 32, 32), flip)
  return per_image_standardization(x), per_image_standardization(teacher)


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

def is_deterministic(name):
  """True when the chain's training half is its evaluation half (no augmentation)."""
  train, evaluation = CHAINS[name]
  return train is evaluation


def matched_views(student, teacher):
  """fn(images, seed) -> (student's training view, teacher's view of the same draw).

  Same chain: the teacher sees exactly what the student sees. AlexNet student, ResNet-56
  teacher: the same crop offset and flip, each at its own resolution (_alexnet_cifar_views).
  """
  if student == teacher:
    train = CHAINS[student][0]
    return lambda images, seed: (lambda x: (x, x))(train(images, seed))
  if (student, teacher) == ('alexnet_cifar', 'resnet_cifar'):
    return lambda images, seed: _alexnet_cifar_views(images, seed, with_resnet_view=True)
  raise ValueError(f'no matched augmentation for a "{student}" student and a "{teacher}" '
                   'teacher; use teacher_outputs=cached.')


# Chains of streamed datasets, per example (images of any size): name -> (train(image, seed,
# size), eval(image, size)).
PER_EXAMPLE_CHAINS = {'inception': (inception_preprocessing.train_image,
                                    inception_preprocessing.eval_image)}

# preprocessing name -> shape of the images it takes (None: any size)
INPUT_SHAPES = {'alexnet_cifar': (32, 32, 3), 'resnet_cifar': (32, 32, 3),
                'mnist_shift': (28, 28, 1), 'mnist': (28, 28, 1), 'inception': (None, None, 3)}


def takes(name, image_shape):
  """Whether chain `name` takes images of `image_shape` (a dataset's, None: any size)."""
  return all(a is None or b is None or a == b for a, b in zip(INPUT_SHAPES[name], image_shape))


# preprocessing name -> shape of the images it produces (the model's input shape)
OUTPUT_SHAPES = {'alexnet_cifar': (24, 24, 3), 'resnet_cifar': (32, 32, 3),
                 'mnist_shift': (28, 28, 1), 'mnist': (28, 28, 1),
                 'inception': (inception_preprocessing.IMAGE_SIZE,) * 2 + (3,)}
