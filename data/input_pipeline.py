"""tf.data pipelines: the paper's train/validation/test splits with the chosen augmentation chain."""
import numpy as np
import tensorflow as tf

from data import preprocessing
from data import sources
from data import streaming
from data.readers import DataError

SPLITS = ('train', 'validation', 'test')
# The dtype a streamed training stream sends its images in, by Keras dtype policy.
HOST_IMAGE_DTYPES = {None: tf.float32, 'float32': tf.float32, 'mixed_bfloat16': tf.bfloat16}


def num_classes(name):
  sources.check_name(name)
  return sources.DATASETS[name].num_classes


def _validation_size(name, validation_size):
  return sources.DATASETS[name].validation_size if validation_size is None else validation_size


def load_split(name, split, data_dir=None, validation_size=None, download=False):
  """(images uint8 [N, H, W, C], labels int32 [N]) of one split."""
  _check_split(split)
  official = sources.load_official(name, data_dir, download)
  if split == 'test':
    return official['test']
  images, labels = official['train']
  holdout = _validation_size(name, validation_size)
  if not 0 <= holdout < len(labels):
    raise DataError(f'validation_size {holdout} must be in [0, {len(labels)}) for {name}.')
  cut = len(labels) - holdout
  return (images[:cut], labels[:cut]) if split == 'train' else (images[cut:], labels[cut:])


def _check_split(split):
  if split not in SPLITS:
    raise DataError(f'unknown split "{split}"; choose one of {", ".join(SPLITS)}.')


def num_examples(name, split, data_dir=None, validation_size=None):
  sources.check_name(name)
  entry = sources.DATASETS[name]
  if entry.streamed:
    _check_split(split)
    return streaming.split_size(entry, data_dir, split, _validation_size(name, validation_size))
  return len(load_split(name, split, data_dir, validation_size)[1])


def _shuffled_index_batches(n, seed, start_step, batch_size):
  """Endless full batches of example indices, epoch e a seeded permutation, from a step on.

  Whole permutations are rebatched (a batch may straddle two epochs), which costs a fifth of
  batching them element by element (0.08 against 0.41 ms a batch of 512 on a Zen 5).
  """
  start_epoch, offset = divmod(start_step * batch_size, n)

  def permutation(epoch):
    key = tf.stack([tf.cast(seed, tf.int64), epoch])
    indices = tf.argsort(tf.random.stateless_uniform([n], key))
    return indices[offset:] if epoch == start_epoch else indices

  return tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).map(permutation).rebatch(
      batch_size, drop_remainder=True)


def build_dataset(name, split, *, batch_size, training, data_dir=None, seed=0,
                  preprocessing_name=None, validation_size=None, start_step=0,
                  download=False, with_index=False, teacher_view=None, num_steps=None,
                  image_size=None, input_context=None, dtype_policy=None):
  """Batches of (image float32 [B, H, W, C], label int32 [B]).

  training=True: endless, shuffled, augmented by the chain's training half, full batches
  only (tf.distribute splits them evenly); batch k is the same whatever `start_step` a
  run resumes from. training=False: one ordered pass through the split, evaluation chain,
  last partial batch kept. preprocessing_name None: the dataset's recipe chain (its registry
  entry); data_dir None: ../shared/datasets beside the project.
  with_index=True adds each example's index in the split (to look up cached teacher outputs);
  teacher_view=CHAIN (training only) yields ((image, that chain's view of the same random
  draw), label), so a distillation teacher sees what the student sees.

  A streamed registry entry (ImageNet) is read by data.streaming instead from a prepared tfds
  copy in data_dir (None: tfds' default folder), with the same contract: its training stream
  supplies num_steps batches from start_step, its chain works per example, image_size (the
  chain's own by default) is the side of its square views. Its training stream also takes:
  input_context (a tf.distribute.InputContext, as strategy.distribute_datasets_from_function
  passes it): this input pipeline's share of the split and of every step, as per-replica
  batches of the global batch_size (data.streaming); dtype_policy 'mixed_bfloat16': images
  sent as bfloat16, cast on the host as the TPU reference's input pipeline does
  (tensorflow/tpu models/experimental/inception/inception_v4.py, InputPipeline.dataset_parser),
  halving what crosses to the device; the model's first layer computes in bfloat16 anyway.
  """
  sources.check_name(name)
  _check_split(split)
  if sources.DATASETS[name].streamed:
    return _streamed(name, split, batch_size, training, data_dir, seed, preprocessing_name,
                     validation_size, start_step, num_steps, image_size,
                     with_index or teacher_view, input_context, dtype_policy)
  for option, value in (('image_size', image_size), ('input_context', input_context),
                        ('dtype_policy', dtype_policy)):
    if value:
      raise DataError(f'{option} is for streamed datasets; {name} is read into memory.')
  images, labels = load_split(name, split, data_dir, validation_size, download)
  if len(labels) == 0:
    raise DataError(f'split "{split}" of {name} is empty (validation_size=0?).')
  preprocessing_name = preprocessing_name or sources.DATASETS[name].preprocessing
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
    indices = _shuffled_index_batches(len(labels), seed, start_step, batch_size)
  else:
    indices = tf.data.Dataset.range(len(labels)).batch(batch_size)
  ds = indices.enumerate(start=start_step).map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                                               deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _streamed(name, split, batch_size, training, data_dir, seed, preprocessing_name,
              validation_size, start_step, num_steps, image_size, for_distillation,
              input_context, dtype_policy):
  entry = sources.DATASETS[name]
  chain = preprocessing_name or entry.preprocessing
  if chain not in preprocessing.PER_EXAMPLE_CHAINS:
    raise DataError(f'{name} is streamed, so its preprocessing works per example: choose one '
                    f'of {", ".join(preprocessing.PER_EXAMPLE_CHAINS)}, not "{chain}".')
  if for_distillation:
    raise DataError(f'{name} is streamed: distillation students (with_index, teacher_view) '
                    'read in-memory datasets only.')
  if dtype_policy not in HOST_IMAGE_DTYPES:
    raise DataError(f'unknown dtype_policy "{dtype_policy}"; choose one of '
                    f'{", ".join(p for p in HOST_IMAGE_DTYPES if p)}.')
  train_view, eval_view = preprocessing.PER_EXAMPLE_CHAINS[chain]
  size = image_size or preprocessing.OUTPUT_SHAPES[chain][0]
  return streaming.build_streamed_dataset(
      entry, split, batch_size=batch_size, training=training, data_dir=data_dir, seed=seed,
      start_step=start_step, validation_size=_validation_size(name, validation_size),
      train_view=lambda image, key: train_view(image, key, size),
      eval_view=lambda image: eval_view(image, size), num_steps=num_steps,
      input_context=input_context, image_dtype=HOST_IMAGE_DTYPES[dtype_policy])
