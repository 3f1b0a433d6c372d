"""Mutual information between a training example's index and a logit difference (paper Section 4,
Appendix A.2): how much of the example's identity the network keeps under augmentation.

With f_{x,l} = z_a - z_b on the l-th random augmentation of example x (l = 1..L), mu_x the mean
of the L draws, y_x one more draw and sigma^2 = (1/N) sum_x (y_x - mu_x)^2,

  I = (1/N) sum_x [ -(y_x - mu_x)^2 / (2 sigma^2)
                    - log( (1/N) sum_x' exp(-(y_x - mu_x')^2 / (2 sigma^2)) ) ],

with both 1/N factors (a transcription without them gives values near -N log N). Each summand
is at most log N (the x' = x term alone is the first term), so I <= log N. I = 0 when all mu_x
coincide, log 2 for two tight well-separated clusters, log N when every mu_x stands alone.

y_x: by default an extra, independent draw (the estimate then stays a lower bound of the true
MI; the paper does not say); in_sample=True plugs in the first of the L draws instead, which
biases it up by about 0.5 log(L / (L - 1)).
"""
import numpy as np
from scipy import special


def mutual_information(draws, in_sample=False):
  """I_hat in nats from draws [N, L + 1] (L draws for mu_x, the last column the extra y_x).

  in_sample=True: mu_x over the first L columns, y_x their first column (the last is unused).
  """
  f = np.asarray(draws, np.float64)
  if f.ndim != 2 or f.shape[1] < 2:
    raise ValueError(f'draws must be [N examples, L + 1 draws] with L >= 1, got {f.shape}.')
  mu = f[:, :-1].mean(axis=1)
  y = f[:, 0] if in_sample else f[:, -1]
  sigma2 = np.mean((y - mu) ** 2)
  if not np.isfinite(sigma2) or sigma2 <= 0:
    raise ValueError('the draws of every example are identical (sigma^2 = 0); the augmentation '
                     'must change the logits for the estimate to exist.')
  log_kernel = -((y[:, None] - mu[None, :]) ** 2) / (2.0 * sigma2)  # [x, x']
  n = len(y)
  return float(np.mean(np.diag(log_kernel) - (special.logsumexp(log_kernel, axis=1) - np.log(n))))
