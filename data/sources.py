"""Where each dataset comes from: raw standard files under ``data_dir``, else a prepared tfds copy.

``load_official(name, data_dir)`` returns ``{'train': (images, labels), 'test': (images, labels)}``
with the official splits as uint8 HWC images and int32 labels.
"""
import functools
import os

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

DATASETS = {
    # name: (num_classes, tfds name, raw layouts tried in order)
    'mnist': (10, 'mnist', [_idx_layout(['mnist'], _IDX)]),
    'fashion_mnist': (10, 'fashion_mnist', [_idx_layout(['fashion_mnist', 'fashion-mnist'], _IDX)]),
    'emnist': (47, 'emnist/balanced', [_idx_layout(['emnist', 'emnist/gzip', 'gzip'], _EMNIST,
                                                   transpose=True)]),
    'cifar10': (10, 'cifar10', [_CIFAR10_BIN, _CIFAR10_PY]),
    'cifar100': (100, 'cifar100', [_CIFAR100_BIN, _CIFAR100_PY]),
}


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
    if not os.path.isfile(os.path.join(builder.data_dir, 'dataset_info.json')):
      continue
    splits = {}
    for split in ('train', 'test'):
      arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
      splits[split] = (arrays['image'], arrays['label'].astype('int32'))
    return splits
  return None


@functools.lru_cache(maxsize=4)
def load_official(name, data_dir=None, download=False):
  """Raw files first (so offline runs never touch the network), then tfds.

  data_dir None: DEFAULT_DATA_DIR, the bundled datasets beside the project.
  """
  check_name(name)
  data_dir = data_dir or DEFAULT_DATA_DIR
  _, tfds_name, layouts = DATASETS[name]
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
