r"""Paper Figure 6 on MNIST: mutual information between a training example's index and the
logit difference z_0 - z_1 under the 2x1200 recipe's +-2 px shifts, 300 training examples of each
of two digits (the paper's digits for MNIST are unstated; 0 and 1 by default), during training
with alpha = 0 and 0.1.

  python -m experiments.mutual_information_mnist --output_dir=results/mutual_information_mnist
Trains both runs with the full recipe (or reuses --run_dirs), estimating at step 0 and every
--every steps, then draws the figure and writes the points.
"""
from experiments import mutual_information_common

if __name__ == '__main__':
  mutual_information_common.run('fc', 'mnist', [0, 1], every=50)
