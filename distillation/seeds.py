"""Across-seed summaries of paired runs: is a difference between two networks beyond seed noise?

Table 4's claim compares two students trained with the same seed (same initialization, data
order and augmentation), so the per-seed difference is the statistic, with a paired t-test.
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
  if not difference['p_value'] < level:  # NaN (one seed, or no spread) included
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
