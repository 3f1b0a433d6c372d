"""Shared test set-up: quiet TF, the bundled datasets, and tiny CIFAR files in official formats."""
import atexit
import os
import pickle
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest

from tests import binary_runner  # pylint: disable=g-import-not-at-top

ROOT = binary_runner.ROOT

# TensorFlow picks oneDNN's bfloat16 kernels from the CPU's features (AVX512_BF16 on the Zen 4,
# Zen 5 and Xeon machines of this kind; a Zen 3 without AVX-512 falls back to Eigen); capping
# oneDNN below them (ONEDNN_MAX_CPU_ISA=AVX2, used to check the suite under other kernels) makes
# TensorFlow abort the process ('could not create a primitive descriptor for the inner
# product'), so bfloat16 tests cannot run under such a cap.
BF16_CAPPED = os.environ.get('ONEDNN_MAX_CPU_ISA', '').upper() in {
    'SSE41', 'AVX', 'AVX2', 'AVX2_VNNI', 'AVX512_CORE', 'AVX512_CORE_VNNI'}
needs_onednn_bfloat16 = pytest.mark.skipif(
    BF16_CAPPED, reason='ONEDNN_MAX_CPU_ISA caps oneDNN below its bfloat16 kernels; '
    'TensorFlow aborts on bfloat16 matmuls under that cap')
SHARED_DATA = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'datasets'))


_ZYGOTE = binary_runner.Zygote()
atexit.register(_ZYGOTE.close)
# LS_TESTS_SUBPROCESS=1 runs every binary as a real `python -m` subprocess (slower by the import
# of TensorFlow per run; the suite passes both ways).
_FORK = os.environ.get('LS_TESTS_SUBPROCESS', '') != '1'


def pytest_collection_modifyitems(items):
  """The tests marked slow(seconds) run first, longest first (the rest in file order): under
  pytest-xdist the long tests then start early and the short ones fill the gaps, instead of
  one worker finishing a long test alone at the end."""
  def seconds(item):
    marker = item.get_closest_marker('slow')
    return -marker.args[0] if marker else 0
  items.sort(key=seconds)


def run_binary(module, *args, timeout=600, env=None):
  """Runs `python -m module args` from the project root (with `env` added to the environment);
  returns the CompletedProcess. A fork of tests.binary_runner's zygote where the environment
  allows it, so TensorFlow is not imported again for every run."""
  env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
  if _FORK and _ZYGOTE.forks_for(env):
    return _ZYGOTE.run(module, args, env, timeout)
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, env=env)


def cifar_images(n, seed):
  return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def to_planes(images):
  """HWC images -> the CIFAR record layout: R, G, B planes of 32x32, row-major."""
  return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def write_cifar10_bin(directory, per_batch=20, test=20, seed=0):
  """cifar-10-batches-bin/ with 5 train files and a test file; returns (train, test) arrays."""
  d = os.path.join(directory, 'cifar-10-batches-bin')
  os.makedirs(d, exist_ok=True)
  rng = np.random.default_rng(seed)
  out = {}
  for name, n in [(f'data_batch_{i}.bin', per_batch) for i in range(1, 6)] + [
      ('test_batch.bin', test)]:
    images, labels = cifar_images(n, rng.integers(1 << 30)), rng.integers(0, 10, n)
    records = np.concatenate([labels[:, None].astype(np.uint8), to_planes(images)], axis=1)
    records.tofile(os.path.join(d, name))
    out[name] = (images, labels)
  train = [out[f'data_batch_{i}.bin'] for i in range(1, 6)]
  return ((np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
          out['test_batch.bin'])


def write_cifar100_pickle(directory, n_train=30, n_test=10, seed=0):
  d = os.path.join(directory, 'cifar-100-python')
  os.makedirs(d, exist_ok=True)
  rng = np.random.default_rng(seed)
  out = {}
  for name, n in (('train', n_train), ('test', n_test)):
    images = cifar_images(n, rng.integers(1 << 30))
    fine, coarse = rng.integers(0, 100, n), rng.integers(0, 20, n)
    batch = {b'data': to_planes(images), b'fine_labels': fine.tolist(),
             b'coarse_labels': coarse.tolist(), b'filenames': [b'x.png'] * n,
             b'batch_label': b'training batch'}
    with open(os.path.join(d, name), 'wb') as f:
      pickle.dump(batch, f, protocol=2)
    out[name] = (images, fine)
  return out['train'], out['test']


@pytest.fixture
def shared_data():
  if not os.path.isdir(os.path.join(SHARED_DATA, 'mnist')):
    pytest.fail(f'bundled MNIST not found at {SHARED_DATA}; the tests need ../shared beside the '
                'project.')
  return SHARED_DATA
