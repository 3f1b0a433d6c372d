r"""Images/second of each input pipeline on this machine (no model attached).

  python -m experiments.benchmark_input [--data_dir=...] [--batches=200]
CIFAR chains read real CIFAR files when --data_dir has them, else synthetic files written
in the official binary format to a temporary folder (throughput does not depend on pixels).
"""
import os
import tempfile
import time

from absl import flags
import numpy as np

import data
from experiments import common

flags.DEFINE_integer('batches', 200, 'Batches timed per pipeline (after 20 warm-up batches).')
flags.DEFINE_integer('batch_size', 128, 'Batch size.')
common.define_data_flags()
FLAGS = flags.FLAGS

PIPELINES = [('mnist', 'mnist_shift'), ('mnist', 'mnist'), ('cifar10', 'alexnet_cifar'),
             ('cifar10', 'resnet_cifar')]


def _synthetic_cifar10(directory):
  d = os.path.join(directory, 'cifar-10-batches-bin')
  os.makedirs(d)
  rng = np.random.default_rng(0)
  for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
    rng.integers(0, 256, (10000, 3073), dtype=np.uint8).tofile(os.path.join(d, name))
  return directory


def images_per_second(dataset, preprocessing_name, data_dir):
  ds = data.build_dataset(dataset, 'train', batch_size=FLAGS.batch_size, training=True,
                          data_dir=data_dir, preprocessing_name=preprocessing_name)
  iterator = iter(ds)
  for _ in range(20):
    next(iterator)
  start = time.perf_counter()
  for _ in range(FLAGS.batches):
    next(iterator)
  return FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    for dataset, chain in PIPELINES:
      data_dir = FLAGS.data_dir
      source = 'real'
      if dataset.startswith('cifar'):
        try:
          data.load_split(dataset, 'test', data_dir)
        except data.DataError:
          data_dir, source = _synthetic_cifar10(tmp) if not os.listdir(tmp) else tmp, 'synthetic'
      rate = images_per_second(dataset, chain, data_dir)
      print(f'{dataset:8s} {chain:14s} ({source:9s}) {rate:10,.0f} images/s', flush=True)


if __name__ == '__main__':
  common.run(main)
