"""The paper's smoothness index gamma of a teacher (the x-axis of Figure 5), and the temperature
at which the hard-target teacher reaches a given gamma (Figure 5's matched-gamma contrast)."""
import numpy as np

from calibration.metrics import softmax


def smoothness_index(logits, labels, temperature=1.0):
  """gamma = E_x[ sum_k (1 - y_k) p_k(T) ] * K / (K - 1) with one-hot y.

  For a network that outputs exactly the uniformly smoothed labels, gamma = alpha.
  """
  probs = softmax(logits, temperature)
  k = probs.shape[-1]
  off_target = 1.0 - probs[np.arange(len(labels)), labels]
  return float(off_target.mean() * k / (k - 1))


def matched_temperature(logits, labels, gamma, low=0.05, high=1000.0, tolerance=1e-6):
  """The temperature T* at which these (hard-target teacher's) logits have smoothness index
  `gamma`, by bisection in log T.

  gamma(T) rises with T on every correctly classified example (its target probability falls as
  the logits flatten), so it is monotone for a teacher that fits its training set; the solution
  is checked, and a gamma outside [gamma(low), gamma(high)] or a non-monotone stretch is refused
  in one line rather than answered wrongly.
  """
  at = lambda t: smoothness_index(logits, labels, t)
  lo, hi = np.log(low), np.log(high)
  if not at(low) <= gamma <= at(high):
    raise ValueError(f'gamma {gamma:.4f} is outside [{at(low):.4f}, {at(high):.4f}], the '
                     f'teacher\'s range for T in [{low:g}, {high:g}]; no temperature matches it.')
  while hi - lo > tolerance:
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if at(np.exp(mid)) < gamma else (lo, mid)
  temperature = float(np.exp(0.5 * (lo + hi)))
  if abs(at(temperature) - gamma) > 1e-4:
    raise ValueError(f'gamma(T) is not monotone around gamma {gamma:.4f} for these logits '
                     f'(bisection ended at T {temperature:.4f}, gamma {at(temperature):.4f}).')
  return temperature
