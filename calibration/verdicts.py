"""Verdicts on the paper's claims: is a difference between two networks beyond seed noise (paired
runs over seeds), or beyond the sampling error of one evaluation set (one run each)?

Table 4's claim compares two students trained with the same seed (same initialization, data
order and augmentation), so the per-seed difference is the statistic, with a paired t-test.
A claim made from one run per network can only be tested against the binomial error of the
accuracies it compares. Each rule answers one of: holds, the opposite holds, not established
(seeds disagree), not observable (one seed, or a difference inside the sampling error).
"""
import numpy as np
from scipy import stats


def mean_std(values):
  """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def paired_difference(a, b):
  """Per-pair a - b, its mean and std, and the two-sided paired t-test (NaN below 2 pairs)."""
  diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  mean, std = mean_std(diff)
  n = len(diff)
  if n < 2 or std == 0.0:
    t, p = float('nan'), float('nan')
  else:
    t = mean / (std / np.sqrt(n))
    p = float(2.0 * stats.t.sf(abs(t), df=n - 1))
  return {'per_seed': diff.tolist(), 'mean': mean, 'std': std, 'n': n, 't': float(t),
          'p_value': p}


def verdict(difference, expected_sign, level=0.05):
  """Whether a paired difference shows the expected sign beyond seed noise (two-sided test)."""
  if difference['n'] < 2:
    return 'not observable with one seed'
  if not difference['p_value'] < level:  # NaN (no spread) included
    return 'not established beyond seed noise'
  if np.sign(difference['mean']) == expected_sign:
    return 'holds beyond seed noise'
  return 'the opposite holds beyond seed noise'


def summarize_seeds(errors_by_seed, claims):
  """errors_by_seed: {seed: {network: value}}; claims: [{'first', 'second', 'expected_sign',
  'text'}], each saying first - second has expected_sign. Per network its values over the seeds
  (in first-seen order); per claim the paired difference and the verdict.

  Only seeds that have every network count, so the networks are compared on the same seeds.
  """
  networks = list(dict.fromkeys(k for errors in errors_by_seed.values() for k in errors))
  seeds = sorted(s for s, errors in errors_by_seed.items() if set(networks) <= set(errors))
  summary = {}
  for key in networks:
    values = [errors_by_seed[s][key] for s in seeds]
    mean, std = mean_std(values) if values else (float('nan'), 0.0)
    summary[key] = {'mean': mean, 'std': std, 'n': len(values), 'per_seed': values}
  checked = []
  for claim in claims:
    difference = paired_difference([errors_by_seed[s][claim['first']] for s in seeds],
                                   [errors_by_seed[s][claim['second']] for s in seeds])
    checked.append(dict(claim, **difference,
                        verdict=verdict(difference, claim['expected_sign'])))
  return {'seeds': seeds, 'networks': summary, 'claims': checked}


def accuracy_difference_se(first, second, num_examples):
  """Standard error of first - second, two accuracies (fractions) on `num_examples` examples
  each, as independent binomials (conservative for two networks scored on the same images)."""
  return float(np.sqrt((first * (1 - first) + second * (1 - second)) / num_examples))


Z_95 = 1.96  # standard errors of a two-sided 95% interval


def sampling_verdict(difference, standard_error, expected_sign, z=Z_95):
  """One run per side: does `difference` show the expected sign beyond z standard errors?"""
  if abs(difference) <= z * standard_error:
    return f'not observable at this precision (+-{z * standard_error:.2f}, 95%)'
  if np.sign(difference) == expected_sign:
    return 'holds beyond sampling error'
  return 'the opposite holds beyond sampling error'


def percentile_interval(values, level=0.95):
  """The central `level` interval of bootstrap draws: [low, high]."""
  tail = 50.0 * (1.0 - level)
  low, high = np.nanpercentile(np.asarray(values, np.float64), [tail, 100.0 - tail])
  return [float(low), float(high)]


def interval_verdict(interval, expected_sign):
  """A difference known through its 95% interval (a bootstrap over the evaluation examples):
  does it show the expected sign beyond that sampling error?"""
  low, high = interval
  if low <= 0.0 <= high:
    return f'not observable at this precision (95% interval {low:+.3f} to {high:+.3f})'
  if (1 if low > 0.0 else -1) == expected_sign:
    return 'holds beyond sampling error'
  return 'the opposite holds beyond sampling error'


# Table 3: label smoothing removes 98% (ResNet-56), 73% (Inception-v4) and 97% (Transformer) of
# the ECE that temperature scaling removes from the hard-target network; "about as well" is read
# as at least the paper's own lowest share.
PAPER_LOWEST_SHARE = 0.73


def share_verdict(scaling_gain, share, bound=PAPER_LOWEST_SHARE):
  """Does label smoothing calibrate about as well as temperature scaling? scaling_gain: the 95%
  interval of ECE(hard) - ECE(temperature scaled); share: that of (ECE(hard) - ECE(label
  smoothing)) / scaling_gain. Without a gain beyond sampling error there is nothing to share."""
  if scaling_gain[0] <= 0.0 or share is None:
    return ('not observable: temperature scaling does not lower the hard-target ECE beyond '
            f'sampling error (95% interval {scaling_gain[0]:+.3f} to {scaling_gain[1]:+.3f})')
  if share[0] >= bound:
    return 'holds beyond sampling error'
  if share[1] < bound:
    return 'does not hold beyond sampling error'
  return 'not established at this precision'
