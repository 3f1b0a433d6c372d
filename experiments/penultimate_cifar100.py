r"""Paper Figure 1 for resnet56 on cifar100: penultimate activations of classes 0, 1, 2
(apple, aquarium_fish, baby), projected onto the plane of
their templates, without and with label smoothing, on training and validation examples.

  python -m experiments.penultimate_cifar100 --output_dir=results/penultimate_cifar100
Trains alpha = 0 and 0.1 with the paper recipe, or reuses --run_dirs=DIR_ALPHA0,DIR_ALPHA0.1.
"""
from experiments import penultimate_common

if __name__ == '__main__':
  penultimate_common.run('resnet56', 'cifar100', [0, 1, 2], 'apple,aquarium_fish,baby'.split(','))
