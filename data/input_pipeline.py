"""tf.data pipelines: the paper's train/validation/test splits with the chosen augmentation chain."""
import numpy as np
import tensorflow as tf

from data import preprocessing
from data import sources
from data.readers import DataError

# Held out of the official training set as `validation`; the rest is `train`. CIFAR: the
# paper's 40k/10k split (the last 10k). MNIST-family: the last 5k, as TensorFlow's classic
# MNIST tutorial did, so temperature scaling has a split that is neither train nor test.
DEFAULT_VALIDATION_SIZE = {'mnist': 5000, 'fashion_mnist': 5000, 'emnist': 5000,
                           'cifar10': 10000, 'cifar100': 10000}
SPLITS = ('train', 'validation', 'test')
# The chain each dataset's recipe uses (models/recipes.py), for callers who name none.
DEFAULT_PREPROCESSING = {'mnist': 'mnist_shift', 'fashion_mnist': 'mnist_shift',
                         'emnist': 'mnist_shift', 'cifar10': 'alexnet_cifar',
                         'cifar100': 'resnet_cifar'}


def num_classes(name):
  sources.check_name(name)
  return sources.DATASETS[name][0]


def load_split(name, split, data_dir=None, validation_size=None, download=False):
  """(images uint8 [N, H, W, C], labels int32 [N]) of one split."""
  if split not in SPLITS:
    raise DataError(f'unknown split "{split}"; choose one of {", ".join(SPLITS)}.')
  official = sources.load_official(name, data_dir, download)
  if split == 'test':
    return official['test']
  images, labels = official['train']
  holdout = DEFAULT_VALIDATION_SIZE[name] if validation_size is None else validation_size
  if not 0 <= holdout < len(labels):
    raise DataError(f'validation_size {holdout} must be in [0, {len(labels)}) for {name}.')
  cut = len(labels) - holdout
  return (images[:cut], labels[:cut]) if split == 'train' else (images[cut:], labels[cut:])


def num_examples(name, split, data_dir=None, validation_size=None):
  return len(load_split(name, split, data_dir, validation_size)[1])


def _shuffled_index_stream(n, seed, start):
  """Infinite stream of example indices, epoch e a seeded permutation, from position `start`."""
  start_epoch, offset = divmod(start, n)

  def permutation(epoch):
    key = tf.stack([tf.cast(seed, tf.int64), epoch])
    return tf.data.Dataset.from_tensor_slices(
        tf.argsort(tf.random.stateless_uniform([n], key)))

  return tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(
      permutation).skip(offset)


def build_dataset(name, split, *, batch_size, training, data_dir=None, seed=0,
                  preprocessing_name=None, validation_size=None, start_step=0,
                  download=False, with_index=False, teacher_view=None):
  """Batches of (image float32 [B, H, W, C], label int32 [B]).

  training=True: endless, shuffled, augmented by the chain's training half, full batches
  only (tf.distribute splits them evenly); batch k is the same whatever `start_step` a
  run resumes from. training=False: one ordered pass through the split, evaluation chain,
  last partial batch kept. preprocessing_name None: the dataset's recipe chain
  (DEFAULT_PREPROCESSING); data_dir None: ../shared/datasets beside the project.
  with_index=True adds each example's index in the split (to look up cached teacher outputs);
  teacher_view=CHAIN (training only) yields ((image, that chain's view of the same random
  draw), label), so a distillation teacher sees what the student sees.
  """
  images, labels = load_split(name, split, data_dir, validation_size, download)
  if len(labels) == 0:
    raise DataError(f'split "{split}" of {name} is empty (validation_size=0?).')
  preprocessing_name = preprocessing_name or DEFAULT_PREPROCESSING[name]
  for chain in (preprocessing_name, teacher_view or preprocessing_name):
    if chain not in preprocessing.CHAINS:
      raise DataError(f'unknown preprocessing "{chain}"; choose one of '
                      f'{", ".join(preprocessing.CHAINS)}.')
  train_chain, eval_chain = preprocessing.CHAINS[preprocessing_name]
  if teacher_view:
    if not training:
      raise DataError('teacher_view is for training streams only.')
    train_chain = preprocessing.matched_views(preprocessing_name, teacher_view)
  images_t, labels_t = tf.constant(images), tf.constant(labels)

  def gather(step, index):
    x = tf.cast(tf.gather(images_t, index), tf.float32)
    if training:
      x = train_chain(x, tf.stack([tf.cast(seed, tf.int64), step]))
    else:
      x = eval_chain(x)
    y = tf.gather(labels_t, index)
    return (x, y, index) if with_index else (x, y)

  if training:
    indices = _shuffled_index_stream(len(labels), seed, start_step * batch_size)
    indices = indices.batch(batch_size, drop_remainder=True)
  else:
    indices = tf.data.Dataset.range(len(labels)).batch(batch_size)
  ds = indices.enumerate(start=start_step).map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                                               deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
