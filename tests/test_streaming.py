"""The streaming input path (data.streaming) and slim's Inception preprocessing, offline: a tiny
tfds dataset prepared in the test (real shards, so split slicing is real) and
`tfds.testing.mock_data` for imagenet2012 (random examples of random sizes, no files)."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data import inception_preprocessing, sources, streaming
import data
from models import recipes
from visualization import penultimate

NUM_EXAMPLES = 30


class TinyStreamed(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """30 train and 10 test images of varied sizes; the label is the example's number, so a
  split's contents can be read back from its labels."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(None, None, 3)),
        'label': tfds.features.ClassLabel(num_classes=1000)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(0, NUM_EXAMPLES),
            'test': self._generate_examples(500, 10)}

  def _generate_examples(self, first, count):  # pylint: disable=arguments-differ
    rng = np.random.default_rng(first)
    for i in range(first, first + count):
      size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)), 3)
      yield i, {'image': rng.integers(0, 256, size, dtype=np.uint8), 'label': i}


def _prepare(tmp_path, monkeypatch, num_shards=None):
  builder = TinyStreamed(data_dir=str(tmp_path))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(num_shards=num_shards))
  monkeypatch.setattr(streaming, '_builder', lambda name, data_dir: builder)
  entry = sources.Dataset(num_classes=1000, tfds_name='tiny_streamed', layouts=(),
                          validation_size=8, preprocessing='inception', streamed=True)
  monkeypatch.setitem(sources.DATASETS, 'tiny_streamed', entry)
  streaming._split_sizes.cache_clear()  # pylint: disable=protected-access
  return builder


@pytest.fixture(name='tiny')
def _tiny(tmp_path, monkeypatch):
  _prepare(tmp_path, monkeypatch)
  return str(tmp_path)


@pytest.fixture(name='tiny_sharded')
def _tiny_sharded(tmp_path, monkeypatch):
  """The tiny dataset written as 4 shard files (train: 30 examples), and its builder."""
  return str(tmp_path), _prepare(tmp_path, monkeypatch, num_shards=4)


def _labels(batches):
  return np.concatenate([y.numpy() for _, y in batches])


def test_the_held_out_split_is_disjoint_from_training_and_test_is_its_own(tiny):
  kwargs = dict(batch_size=4, training=False, data_dir=tiny, image_size=16)
  validation = _labels(data.build_dataset('tiny_streamed', 'validation', **kwargs))
  train = _labels(data.build_dataset('tiny_streamed', 'train', **kwargs))
  test = _labels(data.build_dataset('tiny_streamed', 'test', **kwargs))
  assert len(validation) == 8 and len(train) == NUM_EXAMPLES - 8 and len(test) == 10
  assert set(validation).isdisjoint(train)
  assert set(validation) | set(train) == set(range(NUM_EXAMPLES))
  assert set(test) == set(range(500, 510))
  assert data.num_examples('tiny_streamed', 'train', tiny) == NUM_EXAMPLES - 8


def test_a_resumed_stream_continues_with_the_batches_of_an_uninterrupted_one(tiny):
  """Across an epoch boundary (22 training examples, batches of 4): steps 3 to 7."""
  kwargs = dict(batch_size=4, training=True, data_dir=tiny, seed=3, image_size=16)
  whole = list(data.build_dataset('tiny_streamed', 'train', num_steps=8, **kwargs))
  resumed = list(data.build_dataset('tiny_streamed', 'train', start_step=3, num_steps=5,
                                    **kwargs))
  assert len(whole) == 8 and len(resumed) == 5
  for (x, y), (rx, ry) in zip(whole[3:], resumed):
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(x, rx)
  epoch = _labels(whole[:6])[:22]  # the first epoch holds every training example once
  in_order = _labels(data.build_dataset('tiny_streamed', 'train', batch_size=4, training=False,
                                        data_dir=tiny, image_size=16))
  assert sorted(epoch) == sorted(in_order) and list(epoch) != list(in_order)
  other_seed = list(data.build_dataset('tiny_streamed', 'train', num_steps=2,
                                       **dict(kwargs, seed=4)))
  assert not np.array_equal(_labels(other_seed), _labels(whole[:2]))


def test_input_pipelines_read_their_own_shards_and_together_every_example_once(tiny_sharded):
  """Two input pipelines (hosts), global batch 4: pipeline p reads tfds' sub-split of its 11 of
  the 22 training examples, so only the shard files holding them (the two shares meet in at
  most one file; validation-only shards are read by neither); its first epoch is its share
  once; the shares are disjoint and make the split. Replicas only cut the same stream into
  per-replica batches; a pipeline resumed at step 3 continues exactly; one pipeline is the
  plain stream."""
  data_dir, builder = tiny_sharded
  prepared = _labels(data.build_dataset('tiny_streamed', 'train', batch_size=4, training=False,
                                        data_dir=data_dir, image_size=16))  # tfds' order
  kwargs = dict(batch_size=4, training=True, data_dir=data_dir, seed=3, image_size=16)

  def stream(pipeline, pipelines=2, replicas=2, **overrides):
    context = tf.distribute.InputContext(pipelines, pipeline, replicas)
    return list(data.build_dataset('tiny_streamed', 'train', input_context=context,
                                   **{**kwargs, 'num_steps': 6, **overrides}))
  files = lambda spec: {f.filename for f in builder.info.splits[spec].file_instructions}
  assert len(files('train')) == 4
  shares, read = [], []
  for pipeline in (0, 1):
    batches = stream(pipeline)
    assert len(batches) == 6 and all(x.shape == (2, 16, 16, 3) for x, _ in batches)
    epoch = _labels(batches)[:11]
    assert sorted(epoch) == sorted(prepared[11 * pipeline:11 * (pipeline + 1)])
    assert list(epoch) != list(prepared[11 * pipeline:11 * (pipeline + 1)])  # shuffled
    shares.append(set(epoch))
    spec, share = streaming.pipeline_share(8, 22, pipeline, 2)
    read.append(files(spec))
    keys = streaming.training_examples('tiny_streamed', data_dir, spec, share, 3, 4, 1,
                                       lambda example: example, pipeline=pipeline,
                                       num_pipelines=2)  # augmentation positions from step 2
    assert [int(k) for k, _ in keys] == [2 * k + pipeline for k in range(4, 11)]
    split = stream(pipeline, replicas=4)  # two replicas a host: batches of 1, two a step
    assert len(split) == 12
    np.testing.assert_array_equal(_labels(split), _labels(batches))
    resumed = stream(pipeline, start_step=3, num_steps=3)
    for (x, y), (rx, ry) in zip(batches[3:], resumed, strict=True):
      np.testing.assert_array_equal(y, ry)
      np.testing.assert_array_equal(x, rx)
  assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == set(prepared)
  assert len(read[0] & read[1]) <= 1 and read[0] | read[1] != files('train')
  single = stream(0, pipelines=1, replicas=1, num_steps=3)
  plain = list(data.build_dataset('tiny_streamed', 'train', num_steps=3, **kwargs))
  for (x, y), (px, py) in zip(single, plain, strict=True):
    np.testing.assert_array_equal(y, py)
    np.testing.assert_array_equal(x, px)
  with pytest.raises(data.DataError, match='split evenly over 4 replicas in 2 input pipelines'):
    stream(0, replicas=4, batch_size=6)


def test_training_images_cross_to_the_device_as_bfloat16_under_mixed_bfloat16(tiny):
  """The TPU reference casts images on the host; evaluation stays float32."""
  kwargs = dict(batch_size=4, training=True, data_dir=tiny, seed=3, image_size=16, num_steps=2)
  plain = list(data.build_dataset('tiny_streamed', 'train', **kwargs))
  as_float = data.build_dataset('tiny_streamed', 'train', dtype_policy='float32', **kwargs)
  as_bfloat = data.build_dataset('tiny_streamed', 'train', dtype_policy='mixed_bfloat16',
                                 **kwargs)
  assert as_float.element_spec[0].dtype == tf.float32
  assert as_bfloat.element_spec[0].dtype == tf.bfloat16
  for (x, y), (bx, by) in zip(plain, as_bfloat, strict=True):
    assert x.dtype == tf.float32 and bx.dtype == tf.bfloat16 and by.dtype == tf.int32
    np.testing.assert_array_equal(tf.cast(x, tf.bfloat16).numpy(), bx.numpy())
    np.testing.assert_array_equal(y, by)
  evaluation = data.build_dataset('tiny_streamed', 'validation', batch_size=4, training=False,
                                  data_dir=tiny, image_size=16, dtype_policy='mixed_bfloat16')
  assert evaluation.element_spec[0].dtype == tf.float32
  with pytest.raises(data.DataError, match='dtype_policy is for streamed datasets'):
    data.build_dataset('mnist', 'train', batch_size=4, training=True,
                       dtype_policy='mixed_bfloat16')


def test_imagenet_streams_from_tfds_mock_data_without_files(tmp_path):
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    x, y = next(iter(data.build_dataset('imagenet2012', 'train', batch_size=4, training=True,
                                        data_dir=str(tmp_path), num_steps=2, image_size=32)))
    assert x.shape == (4, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    assert data.num_examples('imagenet2012', 'validation', str(tmp_path)) == 50_000
    assert data.num_classes('imagenet2012') == 1000
  # Without the mock and without a prepared copy: one line naming the fix.
  with pytest.raises(data.DataError, match='no prepared tfds copy of imagenet2012 in .* prepare '
                     'it with tfds'):
    data.build_dataset('imagenet2012', 'test', batch_size=4, training=False,
                       data_dir=str(tmp_path))
  with pytest.raises(data.DataError, match='imagenet2012 is streamed'):
    sources.load_official('imagenet2012', str(tmp_path))


def test_inception_evaluation_view_is_the_central_87_5_percent():
  """A 64 x 64 image, 0 inside its central 56 x 56 (87.5%) and 255 on the 4-pixel border: the
  evaluation view holds no border pixel, so it is all -1 (slim: central crop, then resize)."""
  image = np.full((64, 64, 3), 255, np.uint8)
  image[4:60, 4:60] = 0
  view = inception_preprocessing.eval_image(tf.constant(image), size=28).numpy()
  assert view.shape == (28, 28, 3)
  np.testing.assert_allclose(view, -1.0)
  constant = inception_preprocessing.eval_image(tf.fill([50, 70, 3], tf.constant(51, tf.uint8)))
  np.testing.assert_allclose(constant.numpy(), 51 / 255 * 2 - 1, atol=1e-6)


def test_inception_training_view_is_a_seeded_distortion_in_range():
  rng = np.random.default_rng(0)
  image = tf.constant(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
  seed = tf.constant([7, 11], tf.int64)
  first = inception_preprocessing.train_image(image, seed, size=24).numpy()
  again = inception_preprocessing.train_image(image, seed, size=24).numpy()
  other = inception_preprocessing.train_image(image, seed + 1, size=24).numpy()
  assert first.shape == (24, 24, 3) and first.min() >= -1.0 and first.max() <= 1.0
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_inception_colour_distortion_is_slims_fast_mode_ordering():
  """slim's training chain in fast mode has one distort_color ordering (see
  data/inception_preprocessing.py): crop, bilinear resize, flip, brightness, then saturation,
  clip, scale to [-1, 1]. The training view is that composition of its stateless draws, for
  every seed, and not the saturation-first one (older slim's other ordering). The two orders
  agree where saturation is not clamped at 1 (a brightness shift commutes with scaling HSV
  saturation), so the image has no blue: every pixel is fully saturated."""
  pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
  pixels[..., 2] = 0
  image = tf.constant(pixels)
  unit = tf.image.convert_image_dtype(image, tf.float32)
  differences = []
  for seed in range(6):
    key = tf.constant([seed, 11], tf.int64)
    seeds = tf.random.experimental.stateless_split(key, 4)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(unit), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[0],
        min_object_covered=0.1, aspect_ratio_range=(0.75, 1.33), area_range=(0.05, 1.0),
        max_attempts=100, use_image_if_no_bounding_boxes=True)
    view = tf.image.resize(tf.slice(unit, begin, size), [24, 24], method='bilinear')
    view = tf.image.stateless_random_flip_left_right(view, seeds[1])
    brightness = lambda x: tf.image.stateless_random_brightness(x, 32 / 255, seeds[2])
    saturation = lambda x: tf.image.stateless_random_saturation(x, 0.5, 1.5, seeds[3])
    finish = lambda x: (tf.clip_by_value(x, 0.0, 1.0).numpy() - 0.5) * 2.0
    got = inception_preprocessing.train_image(image, key, size=24).numpy()
    np.testing.assert_allclose(got, finish(saturation(brightness(view))), atol=1e-6)
    differences.append(np.abs(got - finish(brightness(saturation(view)))).max())
  assert max(differences) > 0.05


def test_figure1_reads_its_classes_from_a_streamed_split(tiny):
  config = recipes.recipe('inception_v4', dataset='tiny_streamed', image_size=75,
                          validation_size=8, aux_loss_weight=0.0)  # 75 px: no auxiliary head
  train = set(_labels(data.build_dataset('tiny_streamed', 'train', batch_size=4, training=False,
                                         data_dir=tiny, image_size=16)))
  classes = sorted(train)[:3]
  images, labels = penultimate.class_examples(config, 'train', classes, 1, tiny)
  assert images.shape == (3, 75, 75, 3) and list(labels) == classes
