r"""Paper Figure 1 for alexnet on cifar10: penultimate activations of classes 0, 1, 2
(airplane, automobile, bird), projected onto the plane of
their templates, without and with label smoothing, on training and validation examples.

  python -m experiments.penultimate_cifar10 --output_dir=results/penultimate_cifar10
Trains alpha = 0 and 0.1 with the paper recipe, or reuses --run_dirs=DIR_ALPHA0,DIR_ALPHA0.1.
"""
from experiments import penultimate_common

if __name__ == '__main__':
  penultimate_common.run('alexnet', 'cifar10', [0, 1, 2], 'airplane,automobile,bird'.split(','))
