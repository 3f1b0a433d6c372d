"""Temperature scaling (Guo et al. 2017): one scalar T fitted by NLL on a held-out split."""
import numpy as np
from scipy import optimize

from calibration import metrics

HELD_OUT_SPLITS = ('validation',)


def fit_temperature(logits, labels, split, bounds=(0.05, 20.0)):
  """argmin_T NLL(softmax(logits / T)) on the held-out `split` (never the test split).

  NLL is convex in the inverse temperature 1/T (a log-sum-exp minus a linear term), so a
  bounded Brent search over 1/T finds the global minimum whatever the logits; no start point.
  Returns T; T at a bound means the optimum lies outside `bounds`.
  """
  if split not in HELD_OUT_SPLITS:
    raise ValueError(f'temperature must be fitted on a held-out split {HELD_OUT_SPLITS}, '
                     f'not "{split}".')
  logits = np.asarray(logits, np.float64)
  result = optimize.minimize_scalar(lambda beta: metrics.nll(logits, labels, 1.0 / beta),
                                    bounds=(1.0 / bounds[1], 1.0 / bounds[0]), method='bounded',
                                    options={'xatol': 1e-7})
  return float(1.0 / result.x)


def temperature_sweep(logits, labels, temperatures, num_bins=metrics.NUM_BINS):
  """ECE, NLL and accuracy at each temperature (for the paper's temperature figures)."""
  return [dict(temperature=float(t), **metrics.evaluate_logits(logits, labels, num_bins,
                                                               temperature=t))
          for t in temperatures]


def cross_fitted(logits, labels, groups, num_bins=metrics.NUM_BINS):
  """Temperature scaling scored out of sample within one held-out split.

  Fitting T on a split and reporting ECE on the same split flatters it. Here the split's
  examples are halved by the parity of `groups` (a sentence index for tokens, so one sentence's
  tokens stay together), T is fitted on each half and every example is scored at the T of the
  other half; returns both temperatures (fitted on the even, on the odd groups) and the metrics
  of all examples so scored.
  """
  logits = np.asarray(logits, np.float64)
  odd = np.asarray(groups) % 2 == 1
  fitted = [fit_temperature(logits[odd == half], labels[odd == half], split='validation')
            for half in (False, True)]
  per_example = np.where(odd, fitted[0], fitted[1])[:, None]
  return {'temperatures': fitted, **metrics.evaluate_logits(logits / per_example, labels,
                                                            num_bins)}
