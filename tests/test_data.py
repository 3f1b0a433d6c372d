"""Data loading, splits and augmentation chains against independent references."""
import gzip
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from data import input_pipeline, preprocessing, readers, sources
import data
from models import classifier, recipes, trainer
from tests.conftest import SHARED_DATA, write_cifar100_pickle, write_cifar10_bin

MNIST_TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_sizes_histogram_and_range(shared_data):
  train_x, train_y = data.load_split('mnist', 'train', shared_data, validation_size=0)
  test_x, test_y = data.load_split('mnist', 'test', shared_data)
  assert train_x.shape == (60000, 28, 28, 1) and test_x.shape == (10000, 28, 28, 1)
  assert np.bincount(test_y).tolist() == MNIST_TEST_HISTOGRAM
  assert train_x.dtype == np.uint8 and train_x.min() == 0 and train_x.max() == 255
  assert data.num_examples('mnist', 'train', shared_data) == 55000
  assert data.num_examples('mnist', 'validation', shared_data) == 5000
  batch_x, batch_y = next(iter(data.build_dataset(
      'mnist', 'test', batch_size=10000, training=False, data_dir=shared_data,
      preprocessing_name='mnist')))
  assert batch_x.dtype == tf.float32 and batch_y.dtype == tf.int32
  assert float(tf.reduce_min(batch_x)) == 0.0 and float(tf.reduce_max(batch_x)) == 1.0
  np.testing.assert_array_equal(batch_y.numpy(), test_y)


def test_validation_is_the_last_examples_of_the_official_train_set(shared_data):
  full_x, _ = data.load_split('mnist', 'train', shared_data, validation_size=0)
  val_x, _ = data.load_split('mnist', 'validation', shared_data)
  np.testing.assert_array_equal(val_x, full_x[-5000:])


def test_per_image_standardization_matches_numpy_formula():
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 255, size=(6, 7, 5, 3))
  images[0] = 42.0  # constant image: std 0, denominator 1/sqrt(n)
  got = preprocessing.per_image_standardization(tf.constant(images, tf.float32)).numpy()
  for img, out in zip(images, got):
    n = img.size
    want = (img - img.mean()) / max(img.std(), 1.0 / np.sqrt(n))
    np.testing.assert_allclose(out, want, atol=1e-4)
    np.testing.assert_allclose(
        out, tf.image.per_image_standardization(tf.constant(img, tf.float32)).numpy(), atol=1e-4)


def test_crop_sizes_of_each_chain():
  images = tf.random.uniform([4, 32, 32, 3], 0, 255)
  seed = tf.constant([1, 2], tf.int64)
  assert preprocessing.alexnet_cifar_train(images, seed).shape == (4, 24, 24, 3)
  assert preprocessing.alexnet_cifar_eval(images).shape == (4, 24, 24, 3)
  assert preprocessing.resnet_cifar_train(images, seed).shape == (4, 32, 32, 3)
  assert preprocessing.resnet_cifar_eval(images).shape == (4, 32, 32, 3)


def test_eval_crop_is_central():
  pattern = np.arange(32 * 32, dtype=np.float32).reshape(1, 32, 32, 1)
  got = preprocessing.central_crop(tf.constant(pattern), 24).numpy()[0, :, :, 0]
  np.testing.assert_array_equal(got, pattern[0, 4:28, 4:28, 0])


@pytest.mark.parametrize('channels', [1, 3])  # crop gathers one-channel images its own way
def test_random_crops_are_windows_of_the_source_and_flips_happen(channels):
  pattern = np.arange(32 * 32 * channels, dtype=np.float32).reshape(1, 32, 32, channels)
  batch = tf.constant(np.repeat(pattern, 200, axis=0))
  seed = tf.constant([3, 4], tf.int64)
  out = preprocessing._random_flip(preprocessing._random_crop(batch, 24, seed), seed).numpy()
  flipped = 0
  for img in out:
    if img[0, 1, 0] < img[0, 0, 0]:
      img, flipped = img[:, ::-1], flipped + 1
    r, c = divmod(int(img[0, 0, 0]) // channels, 32)
    assert 0 <= r <= 8 and 0 <= c <= 8
    np.testing.assert_array_equal(img, pattern[0, r:r + 24, c:c + 24])
  assert 60 < flipped < 140


def test_mnist_shift_gives_exactly_the_25_offsets():
  image = np.zeros((1, 28, 28, 1), np.float32)
  image[0, 14, 14, 0] = 255.0
  out = preprocessing.mnist_shift_train(tf.constant(np.repeat(image, 3000, axis=0)),
                                        tf.constant([5, 6], tf.int64)).numpy()
  offsets = set()
  for img in out[..., 0]:
    (r,), (c,) = np.nonzero(img)
    offsets.add((int(r) - 14, int(c) - 14))
    assert img.max() == 1.0
  assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_alexnet_chain_brightness_and_contrast_ranges():
  """Before standardization the chain adds delta in [-63, 63] then scales by [0.2, 1.8]."""
  images = tf.fill([500, 32, 32, 3], 100.0)
  seed = tf.constant([7, 8], tf.int64)
  s = tf.random.experimental.stateless_split(seed, 4)
  delta = preprocessing._per_image_uniform(images, s[2], -63.0, 63.0).numpy().ravel()
  factor = preprocessing._per_image_uniform(images, s[3], 0.2, 1.8).numpy().ravel()
  assert delta.min() >= -63 and delta.max() <= 63 and np.ptp(delta) > 100
  assert factor.min() >= 0.2 and factor.max() <= 1.8 and np.ptp(factor) > 1.2


def test_training_stream_resumes_at_any_step(shared_data):
  kwargs = dict(batch_size=64, training=True, data_dir=shared_data, seed=3,
                preprocessing_name='mnist_shift')
  stream = list(data.build_dataset('mnist', 'train', **kwargs).take(5))
  resumed = next(iter(data.build_dataset('mnist', 'train', start_step=4, **kwargs)))
  np.testing.assert_array_equal(stream[4][0].numpy(), resumed[0].numpy())
  np.testing.assert_array_equal(stream[4][1].numpy(), resumed[1].numpy())


def test_training_epoch_is_a_permutation(shared_data):
  ds = data.build_dataset('mnist', 'train', batch_size=5000, training=True, data_dir=shared_data,
                          preprocessing_name='mnist', with_index=True)
  indices = np.concatenate([b[2].numpy() for b in ds.take(11)])
  assert sorted(indices) == list(range(55000))


@pytest.mark.parametrize('start_step', [0, 2, 5])
def test_index_batches_straddle_epochs_and_resume_mid_epoch(start_step):
  """n = 10 in batches of 4: batches cross epoch boundaries, start 5 resumes inside epoch 2."""
  def permutation(epoch):
    key = tf.constant([7, epoch], tf.int64)
    return np.argsort(tf.random.stateless_uniform([10], key).numpy(), kind='stable')

  stream = np.concatenate([permutation(e) for e in range(6)])
  want = stream[start_step * 4:].reshape(-1, 4)[:8]
  got = input_pipeline._shuffled_index_batches(10, 7, start_step, 4).take(8)
  np.testing.assert_array_equal(np.stack([b.numpy() for b in got]), want)


def test_cifar10_binary_reader_and_split(tmp_path):
  (train_x, train_y), (test_x, test_y) = write_cifar10_bin(str(tmp_path))
  x, y = data.load_split('cifar10', 'train', str(tmp_path), validation_size=30)
  np.testing.assert_array_equal(x, train_x[:70])
  np.testing.assert_array_equal(y, train_y[:70])
  vx, _ = data.load_split('cifar10', 'validation', str(tmp_path), validation_size=30)
  np.testing.assert_array_equal(vx, train_x[70:])
  tx, ty = data.load_split('cifar10', 'test', str(tmp_path))
  np.testing.assert_array_equal(tx, test_x)
  np.testing.assert_array_equal(ty, test_y)
  batch = next(iter(data.build_dataset('cifar10', 'train', batch_size=8, training=True,
                                       data_dir=str(tmp_path), validation_size=30,
                                       preprocessing_name='alexnet_cifar')))
  assert batch[0].shape == (8, 24, 24, 3)


def test_cifar100_pickle_reader_uses_fine_labels(tmp_path):
  (train_x, train_y), (test_x, test_y) = write_cifar100_pickle(str(tmp_path))
  x, y = data.load_split('cifar100', 'train', str(tmp_path), validation_size=0)
  np.testing.assert_array_equal(x, train_x)
  np.testing.assert_array_equal(y, train_y)
  assert data.num_classes('cifar100') == 100


def test_cifar100_binary_reader_takes_the_fine_label_byte(tmp_path):
  d = tmp_path / 'cifar-100-binary'
  d.mkdir()
  images = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
  for name in ('train.bin', 'test.bin'):
    np.concatenate([np.array([[1, 55], [2, 66], [3, 77]], np.uint8), images], 1).tofile(d / name)
  _, y = data.load_split('cifar100', 'test', str(tmp_path))
  assert y.tolist() == [55, 66, 77]


class _Evil:
  def __reduce__(self):
    return (os.system, ('touch pwned_marker',))


def test_pickle_with_code_is_refused(tmp_path):
  d = tmp_path / 'cifar-10-batches-py'
  d.mkdir()
  for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    with open(d / name, 'wb') as f:
      pickle.dump({b'data': _Evil(), b'labels': [0]}, f, protocol=2)
  with pytest.raises(data.DataError, match='not allowed'):
    data.load_split('cifar10', 'test', str(tmp_path))
  assert not os.path.exists('pwned_marker')


def test_missing_data_error_names_dataset_dir_and_files(tmp_path):
  with pytest.raises(data.DataError) as e:
    sources.load_official('cifar100', str(tmp_path))
  message = str(e.value)
  assert 'no cifar100 data found in ' + str(tmp_path) in message
  assert 'train.bin' in message and 'fine' not in message and 'tfds' in message


def test_corrupt_files_give_clear_errors(tmp_path, shared_data):
  d = tmp_path / 'mnist'
  d.mkdir()
  with open(os.path.join(shared_data, 'mnist', 't10k-labels-idx1-ubyte.gz'), 'rb') as f:
    good_labels = gzip.decompress(f.read())
  (d / 't10k-labels-idx1-ubyte').write_bytes(good_labels[:-10])
  with pytest.raises(data.DataError, match='truncated idx'):
    readers.read_idx(str(d / 't10k-labels-idx1-ubyte'), 2049)
  with pytest.raises(data.DataError, match='bad idx magic'):
    readers.read_idx(str(d / 't10k-labels-idx1-ubyte'), 2051)
  (d / 'bad.gz').write_bytes(b'\x1f\x8b' + b'garbage')
  with pytest.raises(data.DataError, match='corrupt gzip'):
    readers.read_idx(str(d / 'bad.gz'), 2049)
  bad = tmp_path / 'short.bin'
  np.zeros(3000, np.uint8).tofile(bad)
  with pytest.raises(data.DataError, match='not a multiple'):
    readers.read_cifar_binary([str(bad)], 1, 0)


def test_unknown_names_are_rejected():
  with pytest.raises(data.DataError, match='unknown dataset'):
    data.num_classes('imagenet')
  with pytest.raises(data.DataError, match='unknown split'):
    data.load_split('mnist', 'dev')


@pytest.mark.slow(12)
def test_tfds_prepared_copy_is_used_when_raw_files_are_absent(tmp_path, shared_data):
  """Prepare tfds' mnist offline (from the bundled files as its manual dir), then load it."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  tfds_dir = str(tmp_path / 'tfds')
  tfds.builder('mnist', data_dir=tfds_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.path.join(shared_data, 'mnist')))
  sources.load_official.cache_clear()
  from_tfds = sources.load_official('mnist', tfds_dir)
  from_raw = sources.load_official('mnist', shared_data)
  assert from_tfds['test'][0].shape == (10000, 28, 28, 1)
  # tfds stores its own order: compare as multisets of (label, image checksum).
  for split in ('train', 'test'):
    key = lambda xy: sorted(zip(xy[1].tolist(), (hash(img.tobytes()) for img in xy[0])))
    assert key(from_tfds[split]) == key(from_raw[split])


def test_near_constant_images_use_the_one_over_sqrt_n_floor():
  """std below 1/sqrt(n): the floor, not the std, divides (a 1/n floor would divide by std)."""
  rng = np.random.default_rng(1)
  images = 100.0 + 0.01 * rng.standard_normal((3, 24, 24, 3))  # std ~0.01 < 1/sqrt(1728) ~0.024
  images[1] = 7.0  # constant
  images[2, 0, 0, 0] += 0.5  # near-constant with one outlier
  got = preprocessing.per_image_standardization(tf.constant(images, tf.float32)).numpy()
  for img, out in zip(images, got):
    floor = 1.0 / np.sqrt(img.size)
    assert img.std() < floor
    np.testing.assert_allclose(out, (img - img.mean()) / floor, atol=2e-3)
    np.testing.assert_allclose(
        out, tf.image.per_image_standardization(tf.constant(img, tf.float32)).numpy(), atol=2e-3)


def test_library_defaults_data_dir_and_recipe_chain():
  batch = next(iter(data.build_dataset('mnist', 'test', batch_size=1000, training=False)))
  assert batch[0].shape == (1000, 28, 28, 1) and float(batch[0].numpy().max()) <= 1.0
  train = next(iter(data.build_dataset('mnist', 'train', batch_size=64, training=True)))
  assert train[0].shape == (64, 28, 28, 1)  # the recipe's mnist_shift chain
  for model in recipes.RECIPES:
    config = recipes.recipe(model)
    assert data.DATASETS[config.dataset].preprocessing == config.preprocessing


def _write_cifar10_pickle(directory):
  d = os.path.join(directory, 'cifar-10-batches-py')
  os.makedirs(d)
  rng = np.random.default_rng(3)
  for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    batch = {b'data': rng.integers(0, 256, (4, 3072), dtype=np.uint8),
             b'labels': rng.integers(0, 10, 4).tolist()}
    with open(os.path.join(d, name), 'wb') as f:
      pickle.dump(batch, f, protocol=2)


def _write_cifar100_binary(directory):
  d = os.path.join(directory, 'cifar-100-binary')
  os.makedirs(d)
  rng = np.random.default_rng(4)
  for name in ('train.bin', 'test.bin'):
    np.concatenate([rng.integers(0, 20, (5, 1)), rng.integers(0, 100, (5, 1)),
                    rng.integers(0, 256, (5, 3072))], 1).astype(np.uint8).tofile(
                        os.path.join(d, name))


@pytest.mark.parametrize('dataset,archive,folder,write', [
    ('cifar10', 'cifar-10-binary.tar.gz', 'cifar-10-batches-bin',
     lambda d: write_cifar10_bin(d, per_batch=4, test=4)),
    ('cifar10', 'cifar-10-python.tar.gz', 'cifar-10-batches-py', _write_cifar10_pickle),
    ('cifar100', 'cifar-100-binary.tar.gz', 'cifar-100-binary', _write_cifar100_binary),
    ('cifar100', 'cifar-100-python.tar.gz', 'cifar-100-python',
     lambda d: write_cifar100_pickle(d, n_train=6, n_test=4))])
def test_official_archives_are_read_without_extracting(tmp_path, dataset, archive, folder, write):
  extracted, packed = tmp_path / 'extracted', tmp_path / 'packed'
  write(str(extracted))
  packed.mkdir()
  with tarfile.open(packed / archive, 'w:gz') as tar:
    tar.add(extracted / folder, arcname=folder)
  for split in ('train', 'test'):
    want = sources.load_official(dataset, str(extracted))[split]
    got = sources.load_official(dataset, str(packed))[split]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
  assert not (packed / folder).exists()  # nothing was extracted


def test_corrupt_archive_gives_a_clear_error(tmp_path):
  (tmp_path / 'cifar-10-binary.tar.gz').write_bytes(b'\x1f\x8b not really gzip')
  with pytest.raises(data.DataError, match='unreadable archive'):
    sources.load_official('cifar10', str(tmp_path))


def test_teacher_view_is_the_students_crop_and_flip_at_its_own_size():
  """The AlexNet crop must be the centre 24x24 of the ResNet view of the same draw: each
  channel of the one is an increasing affine map of the other (brightness, contrast and
  standardization are affine per image and channel), which other offsets or flips break."""
  images = tf.constant(np.random.default_rng(5).uniform(0, 255, (16, 32, 32, 3)), tf.float32)
  seed = tf.constant([3, 7], tf.int64)
  student, teacher = preprocessing.matched_views('alexnet_cifar', 'resnet_cifar')(images, seed)
  assert student.shape == (16, 24, 24, 3) and teacher.shape == (16, 32, 32, 3)
  np.testing.assert_allclose(student, preprocessing.alexnet_cifar_train(images, seed), atol=1e-5)
  centre = teacher.numpy()[:, 4:28, 4:28]
  for s, t in zip(student.numpy(), centre):
    for c in range(3):
      assert np.corrcoef(s[..., c].ravel(), t[..., c].ravel())[0, 1] > 0.9999
  unmatched = preprocessing.resnet_cifar_train(images, seed + 1).numpy()[:, 4:28, 4:28]
  assert np.corrcoef(student.numpy()[0, ..., 0].ravel(), unmatched[0, ..., 0].ravel())[0, 1] < 0.9
  same = preprocessing.matched_views('mnist_shift', 'mnist_shift')(images[..., :1], seed)
  np.testing.assert_array_equal(same[0], same[1])
  with pytest.raises(ValueError, match='no matched augmentation'):
    preprocessing.matched_views('resnet_cifar', 'alexnet_cifar')


STAND_IN = os.path.join(SHARED_DATA, 'cifar10_jpeg', 'build_binary.py')


@pytest.mark.slow(45)
def test_alexnet_learns_the_cifar10_stand_in_with_the_paper_chain(tmp_path):
  """Real images catch what random test files cannot (channel order, orientation,
  standardization): 400 steps of the paper's AlexNet recipe must beat chance (10%) by far.

  Measured on an AMD EPYC Zen 5: validation accuracy 42.2% with the default oneDNN kernels,
  42.1% with ONEDNN_MAX_CPU_ISA=AVX2; the floor of 30% leaves 12 points of margin.
  """
  if not os.path.isfile(STAND_IN):
    pytest.fail(f'{STAND_IN} not found; the tests need ../shared beside the project.')
  build = subprocess.run([sys.executable, STAND_IN, '--out', str(tmp_path)], capture_output=True,
                         text=True, timeout=600)
  assert build.returncode == 0, build.stderr[-2000:]
  x, y = data.load_split('cifar10', 'validation', str(tmp_path))
  assert x.shape == (10000, 32, 32, 3) and np.bincount(y).min() > 900  # the last 10k, balanced
  config = recipes.recipe('alexnet', train_steps=400, seed=0)
  results = classifier.train_and_evaluate(
      config, str(tmp_path / 'run'), data_dir=str(tmp_path),
      options=trainer.RunOptions(checkpoint_every=400, log=lambda *a, **k: None))
  assert results['metrics']['validation']['accuracy'] > 0.3, results['metrics']['validation']
