"""The streaming input path: a prepared tensorflow-datasets copy read shard by shard and never
held in memory (ImageNet; any registry entry with `streamed=True`), with the in-memory path's
resume contract: the training stream is a pure function of (seed, position), so a run resumed
at step k sees the batches an uninterrupted run would.

- Splits: `validation` is the first `validation_size` examples of the training split in the
  prepared order (tfds shuffles examples when it writes the shards), `train` the rest (tfds
  slices `train[:N]` and `train[N:]`: disjoint by construction); `test` is the dataset's
  evaluation split (ImageNet: the official validation set).
- Training: epoch e reads the shards in an order drawn from (seed, e) and shuffles examples in
  a buffer seeded by (seed, e); a resumed run skips the records its epoch already used (read,
  not decoded). Every example is augmented with the stateless seed (seed, its position).
- Input pipelines (tf.distribute.InputContext, one per host under
  `strategy.distribute_datasets_from_function`): pipeline p of P reads only its contiguous
  share of the training split, the tfds sub-split `train[a_p:a_(p+1)]`, so tfds opens only the
  shard files holding it (tensorflow_datasets/core/reader.py points multi-host readers to this
  sub-split API; its own per-file sharding needs more files than pipelines). Each pipeline's
  stream follows the rules above on its share, supplies global_batch / P examples a step as
  per-replica batches, and augments its k-th example with the position k P + p, so P = 1 is
  the single-pipeline stream and a resumed run (same P and batch size) continues exactly.
- Evaluation: one ordered pass, the last partial batch kept.
"""
import functools

import tensorflow as tf

from data.readers import DataError

SHUFFLE_BUFFER = 16_384  # examples; each epoch's buffer is seeded by (seed, epoch)
READ_PARALLELISM = 16    # shards read at once


def _where(data_dir):
  return data_dir or "tfds' default folder"


def _builder(tfds_name, data_dir):
  """The tfds builder in data_dir (None: tfds' own default folder, not ../shared/datasets)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  return tfds.builder(tfds_name, data_dir=data_dir)


def split_spec(split, validation_size, test_split='test'):
  """The tfds split string of one of our splits (see the module docstring)."""
  if split == 'test':
    return test_split
  if split == 'validation':
    return f'train[:{validation_size}]'
  return f'train[{validation_size}:]'


def split_size(entry, data_dir, split, validation_size):
  """Examples in one of our splits of a registry entry: from the prepared copy's metadata
  (nothing is read), else the entry's official sizes (tfds' mock data has no metadata)."""
  sizes = _split_sizes(entry.tfds_name, data_dir) or dict(entry.official_sizes)
  if entry.test_split not in sizes or 'train' not in sizes:
    raise DataError(f'the tfds copy of {entry.tfds_name} in {_where(data_dir)} has no "train" and '
                    f'"{entry.test_split}" splits; prepare it with tfds first.')
  total = sizes['train']
  if split == 'test':
    return sizes[entry.test_split]
  if not 0 <= validation_size < total:
    raise DataError(f'validation_size {validation_size} must be in [0, {total}) for '
                    f'{entry.tfds_name}.')
  return validation_size if split == 'validation' else total - validation_size


@functools.lru_cache(maxsize=16)
def _split_sizes(tfds_name, data_dir):
  return {name: split.num_examples for name, split in
          _builder(tfds_name, data_dir).info.splits.items()}


def _read(tfds_name, data_dir, spec, shuffle_seed=None):
  """The examples of a split string, in the prepared order or in a seeded shard order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, try_autocache=False,
                                interleave_cycle_length=READ_PARALLELISM)
  options = tf.data.Options()
  options.deterministic = True
  read_config.options = options
  try:
    return _builder(tfds_name, data_dir).as_dataset(
        split=spec, shuffle_files=shuffle_seed is not None, read_config=read_config,
        decoders={'image': tfds.decode.SkipDecoding()} if shuffle_seed is not None else None)
  except (AssertionError, tf.errors.NotFoundError) as e:  # tfds: not prepared in data_dir
    reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
    raise DataError(f'no prepared tfds copy of {tfds_name} in {_where(data_dir)} ({reason}); '
                    'prepare it with tfds (imagenet2012: the official tars in '
                    '<data_dir>/downloads/manual, then tfds build).') from None


def pipeline_share(validation_size, size, pipeline, num_pipelines):
  """(tfds split string, examples) of one input pipeline's contiguous share of our `train`
  split (size examples after the first validation_size of tfds' train split): shares differ
  by at most one example, and together they are the split, each example once."""
  begin = validation_size + pipeline * size // num_pipelines
  end = validation_size + (pipeline + 1) * size // num_pipelines
  if num_pipelines == 1:
    return f'train[{validation_size}:]', size  # the whole split, as split_spec names it
  return f'train[{begin}:{end}]', end - begin


def training_examples(tfds_name, data_dir, spec, num_examples, seed, start_position, num_epochs,
                      decode, shuffle_buffer=SHUFFLE_BUFFER, pipeline=0, num_pipelines=1):
  """(position, example) from position `start_position` of one pipeline's stream for
  `num_epochs` epochs, every epoch a seeded shard order and shuffle; images are decoded
  (decode(example)) after the skip. Positions count this pipeline's examples k as
  k * num_pipelines + pipeline, so no two pipelines share an augmentation seed."""
  if num_examples <= 0:
    raise DataError(f'the training split of {tfds_name} is empty.')
  start_epoch, offset = divmod(start_position, num_examples)
  stream = None
  for epoch in range(start_epoch, start_epoch + max(num_epochs, 1)):
    # Pipeline 0 keeps the single-pipeline seeds; the others shift theirs.
    epoch_seed = (seed * 1_000_003 + epoch + pipeline * 7_919) % (2 ** 31)
    examples = _read(tfds_name, data_dir, spec, shuffle_seed=epoch_seed).shuffle(
        shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
    if epoch == start_epoch:
      examples = examples.skip(offset)
    stream = examples if stream is None else stream.concatenate(examples)
  positions = tf.data.Dataset.range(start_position, start_position + (1 << 62)).map(
      lambda k: k * num_pipelines + pipeline)
  return tf.data.Dataset.zip((positions, stream)).map(
      lambda position, example: (position, decode(example)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _pipeline_batches(batch_size, input_context):
  """(pipeline, pipelines, examples a pipeline supplies a step, its per-replica batch)."""
  if input_context is None:
    return 0, 1, batch_size, batch_size
  pipelines, replicas = input_context.num_input_pipelines, input_context.num_replicas_in_sync
  if batch_size % replicas or replicas % pipelines:
    raise DataError(f'the global batch ({batch_size}) must split evenly over {replicas} '
                    f'replicas in {pipelines} input pipelines; choose a batch size that '
                    'divides.')
  return (input_context.input_pipeline_id, pipelines, batch_size // pipelines,
          input_context.get_per_replica_batch_size(batch_size))


def build_streamed_dataset(entry, split, *, batch_size, training, data_dir, seed, start_step,
                           validation_size, train_view, eval_view, num_steps=None,
                           input_context=None, image_dtype=tf.float32):
  """Batches of (image, label int32) of a streamed registry entry (data.sources):
  train_view(image uint8, seed int64 [2]) and eval_view(image) give each example's view.
  Training streams supply num_steps global steps from start_step (one epoch when None), with
  images cast to image_dtype; with an input_context, this pipeline's share of each step as
  per-replica batches (see the module docstring). Evaluation images stay float32."""
  spec = split_spec(split, validation_size, entry.test_split)
  size = split_size(entry, data_dir, split, validation_size)
  if size == 0:
    raise DataError(f'split "{split}" of {entry.tfds_name} is empty (validation_size=0?).')
  if input_context is not None and not training:
    raise DataError('input_context is for training streams; evaluation reads the whole split.')
  if training:
    pipeline, pipelines, step_examples, replica_batch = _pipeline_batches(batch_size,
                                                                          input_context)
    spec, share = pipeline_share(validation_size, size, pipeline, pipelines)
    if share == 0:
      raise DataError(f'input pipeline {pipeline} of {pipelines} has no examples of the '
                      f'{size} in the training split of {entry.tfds_name}.')
    image_feature = _builder(entry.tfds_name, data_dir).info.features['image']
    decode = lambda example: dict(example, image=image_feature.decode_example(example['image']))
    steps = num_steps or -(-size // batch_size)
    start = start_step * step_examples
    end = start + steps * step_examples
    num_epochs = -(-end // share) - start // share
    examples = training_examples(entry.tfds_name, data_dir, spec, share, seed, start,
                                 num_epochs, decode, pipeline=pipeline, num_pipelines=pipelines)

    def view(position, example):
      key = tf.stack([tf.cast(seed, tf.int64), position])
      image = tf.cast(train_view(example['image'], key), image_dtype)
      # The views keep 3 channels, but some tf.image ops lose the static count; XLA on TPUs
      # needs every dimension of a step's input known.
      image = tf.ensure_shape(image, image.shape[:-1].concatenate([3]))
      return image, tf.cast(example['label'], tf.int32)
    batches = examples.map(view, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = batches.batch(replica_batch, drop_remainder=True).take(
        steps * (step_examples // replica_batch))
  else:
    batches = _read(entry.tfds_name, data_dir, spec).map(
        lambda example: (eval_view(example['image']), tf.cast(example['label'], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
  return batches.prefetch(tf.data.AUTOTUNE)
