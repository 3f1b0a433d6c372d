"""Where each dataset comes from: raw standard files under ``data_dir``, else a prepared tfds copy.

``load_official(name, data_dir)`` returns ``{'train': (images, labels), 'test': (images, labels)}``
with the official splits as uint8 HWC images and int32 labels.
"""
import dataclasses
import functools
import hashlib
import os

import numpy as np
import tensorflow as tf

from data import readers
from data.readers import DataError

_IDX = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
        't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
_EMNIST = tuple('emnist-balanced-' + f for f in _IDX)


def _idx_layout(subdirs, files, transpose=False):
  return dict(kind='idx', subdirs=subdirs, files=files, transpose=transpose)


# CIFAR layouts: the extracted folder (first subdir) or the official archive holding it.
_CIFAR10_BIN = dict(kind='cifar_bin', subdirs=['cifar-10-batches-bin', 'cifar10/cifar-10-batches-bin'],
                    train=[f'data_batch_{i}.bin' for i in range(1, 6)], test=['test_batch.bin'],
                    label_bytes=1, label_index=0, archive='cifar-10-binary.tar.gz')
_CIFAR10_PY = dict(kind='cifar_py', subdirs=['cifar-10-batches-py', 'cifar10/cifar-10-batches-py'],
                   train=[f'data_batch_{i}' for i in range(1, 6)], test=['test_batch'],
                   label_key='labels', archive='cifar-10-python.tar.gz')
_CIFAR100_BIN = dict(kind='cifar_bin', subdirs=['cifar-100-binary', 'cifar100/cifar-100-binary'],
                     train=['train.bin'], test=['test.bin'], label_bytes=2, label_index=1,
                     archive='cifar-100-binary.tar.gz')
_CIFAR100_PY = dict(kind='cifar_py', subdirs=['cifar-100-python', 'cifar100/cifar-100-python'],
                    train=['train'], test=['test'], label_key='fine_labels',
                    archive='cifar-100-python.tar.gz')
# The bundled datasets beside the project: the default of the library and of the binaries.
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 '..', '..', 'shared', 'datasets'))

@dataclasses.dataclass(frozen=True)
class Dataset:
  """One registry entry: everything the pipelines need to know of a dataset."""
  num_classes: int
  tfds_name: str       # the tensorflow-datasets copy read when no raw files are found
  layouts: tuple       # raw file layouts tried in order (none: tfds only)
  validation_size: int  # held out of the official training set as `validation`
  preprocessing: str   # the augmentation chain its recipes use (data.preprocessing)
  streamed: bool = False  # read shard by shard (data.streaming), never into memory
  test_split: str = 'test'  # the tfds split that is our `test`
  official_sizes: tuple = ()  # (tfds split, examples): when a tfds copy has no metadata (mocks)
  image_shape: tuple = (None, None, 3)  # of its raw images (None: any size)


# Held out: CIFAR, the paper's 40k/10k split (the last 10k); MNIST-family, the last 5k, as
# TensorFlow's classic MNIST tutorial did; ImageNet, the paper's "about 50,000" training images
# (the first 50,000 of the prepared, shuffled order), its official validation set the test.
_MNIST_SHAPE, _CIFAR_SHAPE = (28, 28, 1), (32, 32, 3)
DATASETS = {
    'mnist': Dataset(10, 'mnist', (_idx_layout(['mnist'], _IDX),), 5000, 'mnist_shift',
                     image_shape=_MNIST_SHAPE),
    'fashion_mnist': Dataset(10, 'fashion_mnist', (_idx_layout(['fashion_mnist', 'fashion-mnist'],
                                                               _IDX),), 5000, 'mnist_shift',
                             image_shape=_MNIST_SHAPE),
    'emnist': Dataset(47, 'emnist/balanced', (_idx_layout(['emnist', 'emnist/gzip', 'gzip'],
                                                          _EMNIST, transpose=True),),
                      5000, 'mnist_shift', image_shape=_MNIST_SHAPE),
    'cifar10': Dataset(10, 'cifar10', (_CIFAR10_BIN, _CIFAR10_PY), 10000, 'alexnet_cifar',
                       image_shape=_CIFAR_SHAPE),
    'cifar100': Dataset(100, 'cifar100', (_CIFAR100_BIN, _CIFAR100_PY), 10000, 'resnet_cifar',
                        image_shape=_CIFAR_SHAPE),
    'imagenet2012': Dataset(1000, 'imagenet2012', (), 50000, 'inception', streamed=True,
                            test_split='validation',
                            official_sizes=(('train', 1_281_167), ('validation', 50_000))),
}


# sha256 of a dataset's first test file in the official releases (the bundled copies are these).
OFFICIAL_TEST_FILES = {
    'mnist': '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
    'multi30k': '4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16',
}


def _first_test_file(name, data_dir):
  if name == 'multi30k':
    return _existing(os.path.join(data_dir, 'multi30k'), 'test2016.de')
  for layout in DATASETS[name].layouts if name in DATASETS else ():
    test_file = layout['files'][2] if layout['kind'] == 'idx' else layout['test'][0]
    for directory in readers.find_dir(data_dir, layout['subdirs']):
      path = _existing(directory, test_file)
      if path:
        return path
  return None


@functools.lru_cache(maxsize=16)
def identify(name, data_dir=None):
  """What a result says about its data: 'official' when the test file's bytes are the official
  release's, 'stand-in' for the bundled JPEG-recompressed CIFAR-10 (its test set alone is in
  class order), else 'unverified' (other files, a tfds copy)."""
  data_dir = data_dir or DEFAULT_DATA_DIR
  path = _first_test_file(name, data_dir)
  if path is None:
    return 'unverified'
  if name == 'cifar10':
    labels = load_official(name, data_dir)['test'][1]
    return 'stand-in' if (labels[1:] >= labels[:-1]).all() else 'unverified'
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  return 'official' if OFFICIAL_TEST_FILES.get(name) == digest else 'unverified'


def check_name(name):
  if name not in DATASETS:
    raise DataError(f'unknown dataset "{name}"; choose one of {", ".join(sorted(DATASETS))}.')


def _existing(directory, filename):
  """The file, accepting it with or without a .gz suffix."""
  for candidate in (filename, filename[:-3] if filename.endswith('.gz') else filename + '.gz'):
    path = os.path.join(directory, candidate)
    if os.path.isfile(path):
      return path
  return None


def _read_layout(layout, directory):
  """Returns the official splits if every file of ``layout`` is in ``directory``, else None."""
  if layout['kind'] == 'idx':
    paths = [_existing(directory, f) for f in layout['files']]
    if not all(paths):
      return None
    return {'train': readers.read_idx_pair(paths[0], paths[1], layout['transpose']),
            'test': readers.read_idx_pair(paths[2], paths[3], layout['transpose'])}
  splits = {}
  for split in ('train', 'test'):
    paths = [_existing(directory, f) for f in layout[split]]
    if not all(paths):
      return None
    splits[split] = _read_cifar(layout, paths)
  return splits


def _read_cifar(layout, paths, blobs=None):
  if layout['kind'] == 'cifar_bin':
    return readers.read_cifar_binary(paths, layout['label_bytes'], layout['label_index'], blobs)
  return readers.read_cifar_pickle(paths, layout['label_key'], blobs)


def _read_archive(layout, data_dir):
  """The official splits from the official tar.gz in data_dir, without extracting it."""
  archive = os.path.join(data_dir, layout['archive'])
  if not os.path.isfile(archive):
    return None
  members = {split: [f'{layout["subdirs"][0]}/{f}' for f in layout[split]]
             for split in ('train', 'test')}
  blobs = readers.read_tar_members(archive, members['train'] + members['test'])
  if blobs is None:
    raise DataError(f'{archive} lacks {", ".join(members["train"] + members["test"])}; '
                    're-download it.')
  return {split: _read_cifar(layout, [f'{archive}:{n}' for n in names],
                             [blobs[n] for n in names]) for split, names in members.items()}


def _expected_files(layout):
  files = layout['files'] if layout['kind'] == 'idx' else layout['train'] + layout['test']
  expected = f'{layout["subdirs"][0]}/{{{", ".join(files)}}}'
  return expected + (f' or {layout["archive"]}' if 'archive' in layout else '')


def _load_tfds(tfds_name, data_dir, download):
  """A tfds copy that is already prepared (or prepared now when download=True), else None."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  for tfds_dir in ([data_dir] if data_dir else []) + [None]:
    builder = tfds.builder(tfds_name, data_dir=tfds_dir)
    if download and tfds_dir is None:
      builder.download_and_prepare()
    splits = {}
    try:  # a copy that is not prepared there raises; tfds' mock data needs no files
      for split in ('train', 'test'):
        batches = list(tfds.as_numpy(builder.as_dataset(split=split).batch(10_000)))
        splits[split] = (np.concatenate([b['image'] for b in batches]),
                         np.concatenate([b['label'] for b in batches]).astype('int32'))
    except (AssertionError, tf.errors.NotFoundError):
      continue
    return splits
  return None


@functools.lru_cache(maxsize=4)
def load_official(name, data_dir=None, download=False):
  """Raw files first (so offline runs never touch the network), then tfds.

  data_dir None: DEFAULT_DATA_DIR, the bundled datasets beside the project.
  """
  check_name(name)
  if DATASETS[name].streamed:
    raise DataError(f'{name} is streamed (data.streaming), never loaded into memory whole.')
  data_dir = data_dir or DEFAULT_DATA_DIR
  tfds_name, layouts = DATASETS[name].tfds_name, DATASETS[name].layouts
  if os.path.isfile(data_dir):
    raise DataError(f'--data_dir {data_dir} is a file; point it at the folder holding the '
                    f'{name} files.')
  if not os.path.isdir(data_dir):
    raise DataError(f'--data_dir {data_dir} does not exist; point it at the folder holding '
                    f'the {name} files.')
  for layout in layouts:
    for directory in readers.find_dir(data_dir, layout['subdirs']):
      splits = _read_layout(layout, directory)
      if splits:
        return splits
    if 'archive' in layout:
      splits = _read_archive(layout, data_dir)
      if splits:
        return splits
  splits = _load_tfds(tfds_name, data_dir, download)
  if splits:
    return splits
  expected = ' or '.join(_expected_files(layout) for layout in layouts)
  raise DataError(f'no {name} data found in {data_dir}: expected '
                  f'{expected}, or a prepared tfds "{tfds_name}" (pass --download to let tfds '
                  'fetch it when online).')
