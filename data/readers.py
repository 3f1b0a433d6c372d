"""Readers for the standard raw dataset files (MNIST idx, CIFAR binary and python pickles).

Every reader returns ``(images uint8 [N, H, W, C], labels int32 [N])`` and raises
``DataError`` with a one-line message for missing, truncated or corrupt files.
"""
import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np


class DataError(Exception):
  """A user-facing data problem (missing, truncated or corrupt files)."""


def _open_maybe_gz(path):
  with open(path, 'rb') as f:
    raw = f.read()
  if raw[:2] == b'\x1f\x8b':
    try:
      return gzip.decompress(raw)
    except (OSError, EOFError) as e:
      raise DataError(f'{path}: corrupt gzip file ({e}); re-download it.') from None
  return raw


def read_idx(path, expected_magic):
  """Reads an idx file (MNIST-family); checks the magic number and the payload size."""
  raw = _open_maybe_gz(path)
  if len(raw) < 8:
    raise DataError(f'{path}: file too short for an idx header; re-download it.')
  magic = struct.unpack('>i', raw[:4])[0]
  if magic != expected_magic:
    raise DataError(f'{path}: bad idx magic number {magic} (expected {expected_magic}); '
                    'is this the right file?')
  ndim = magic & 0xFF
  dims = struct.unpack('>' + 'i' * ndim, raw[4:4 + 4 * ndim])
  payload = raw[4 + 4 * ndim:]
  if len(payload) != int(np.prod(dims)):
    raise DataError(f'{path}: truncated idx file ({len(payload)} bytes of data, header says '
                    f'{int(np.prod(dims))}); re-download it.')
  return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def read_idx_pair(image_path, label_path, transpose=False):
  images = read_idx(image_path, 2051)
  labels = read_idx(label_path, 2049).astype(np.int32)
  if len(images) != len(labels):
    raise DataError(f'{image_path} has {len(images)} images but {label_path} has '
                    f'{len(labels)} labels.')
  if transpose:  # EMNIST stores images transposed.
    images = images.transpose(0, 2, 1)
  return images[..., None], labels


def _records_to_images(pixels):
  """CIFAR stores each image as R, G, B planes of 32x32; convert to HWC."""
  return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def read_cifar_binary(paths, label_bytes, label_index, blobs=None):
  """Reads CIFAR binary files: each record is ``label_bytes`` then 3072 pixel bytes.

  ``blobs`` (one bytes object per path) are read instead of the files, e.g. tar members.
  """
  record = label_bytes + 3072
  images, labels = [], []
  for i, path in enumerate(paths):
    raw = np.frombuffer(blobs[i] if blobs else _read(path), dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
      raise DataError(f'{path}: size {raw.size} is not a multiple of the {record}-byte CIFAR '
                      'record; the file is truncated or not a CIFAR binary file.')
    raw = raw.reshape(-1, record)
    labels.append(raw[:, label_index].astype(np.int32))
    images.append(_records_to_images(raw[:, label_bytes:]))
  return np.concatenate(images), np.concatenate(labels)


# The only globals a CIFAR python pickle needs: numpy array reconstruction, and
# _codecs.encode, which Python 3 uses for bytes under pickle protocol 2.
_SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode'),
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Admits plain containers and numpy arrays only, so a pickle cannot run code."""

  def find_class(self, module, name):
    if (module, name) in _SAFE_GLOBALS:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'global {module}.{name} is not allowed')


def read_cifar_pickle(paths, label_key, blobs=None):
  """Reads CIFAR python batches through the restricted unpickler (``blobs`` as above)."""
  images, labels = [], []
  for i, path in enumerate(paths):
    try:
      batch = _RestrictedUnpickler(io.BytesIO(blobs[i] if blobs else _read(path)),
                                   encoding='bytes').load()
    except Exception as e:  # pylint: disable=broad-except
      raise DataError(f'{path}: refusing or unable to read CIFAR pickle ({e}).') from None
    if not isinstance(batch, dict):
      raise DataError(f'{path}: not a CIFAR python batch (expected a dict).')
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if 'data' not in batch or label_key not in batch:
      raise DataError(f'{path}: CIFAR pickle lacks the "data" or "{label_key}" entry.')
    data = np.asarray(batch['data'], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch[label_key]):
      raise DataError(f'{path}: CIFAR pickle has data of shape {data.shape} and '
                      f'{len(batch[label_key])} labels; expected [N, 3072] and N labels.')
    images.append(_records_to_images(data))
    labels.append(np.asarray(batch[label_key], dtype=np.int32))
  return np.concatenate(images), np.concatenate(labels)


def read_tar_members(archive, names):
  """{name: bytes} of the members `names` of a (gzipped) tar archive; None if any is absent."""
  try:
    with tarfile.open(archive) as tar:
      members = {m.name: m for m in tar.getmembers() if m.isfile()}
      if not all(n in members for n in names):
        return None
      return {n: tar.extractfile(members[n]).read() for n in names}
  except (tarfile.TarError, OSError, EOFError) as e:
    raise DataError(f'{archive}: unreadable archive ({e}); re-download it.') from None


def find_dir(data_dir, candidates):
  """First directory among data_dir/<candidate> (and data_dir itself) holding files."""
  for sub in list(candidates) + ['']:
    path = os.path.join(data_dir, sub)
    if os.path.isdir(path):
      yield path
