r"""Paper Figure 6: mutual information between a training example's index and the logit
difference z_airplane - z_dog of ResNet-56 on CIFAR-10 (300 training examples of each class,
pad-4 crop and flip as the noise, L = 5), every 4k of the 64k steps, alpha = 0 and 0.1.

  python -m experiments.mutual_information_cifar10 --data_dir=DIR \
      --output_dir=results/mutual_information_cifar10
Trains both runs with the paper recipe (or reuses --run_dirs), then draws the figure.
"""
from experiments import mutual_information_common

if __name__ == '__main__':
  mutual_information_common.run('resnet56', 'cifar10', [0, 5], every=4000)
