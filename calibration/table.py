"""Table 3 of the paper from trained runs: ECE with hard targets, after temperature scaling,
and with label smoothing; every split's role is fixed here (fit on validation, report test)."""

import numpy as np

from calibration import metrics, temperature, verdicts
from data.run_directory import section_results

RESULT = section_results.Kind('calibration', 'calibration.json', ('reliability.png',))
SWEEP_TEMPERATURES = tuple(np.round(np.arange(0.5, 4.01, 0.1), 2))
RESAMPLES = 1000  # bootstrap draws of the test examples behind Table 3's verdicts


def calibration_table(runs, num_bins=metrics.NUM_BINS):
  """runs: [{'alpha', 'validation': (logits, labels), 'test': (logits, labels)}].

  Returns rows for every run at T = 1, a temperature-scaled row for the hard-target run
  (T fitted on its validation logits), the Table 3 summary (the label-smoothing alpha is
  the one with the lowest validation ECE), and temperature sweeps on the test split.
  """
  rows, sweeps = [], {}
  for run in sorted(runs, key=lambda r: r['alpha']):
    test_logits, test_labels = run['test']
    rows.append(dict(kind='label_smoothing', label=f'alpha={run["alpha"]:g}', alpha=run['alpha'],
                     temperature=1.0, validation_ece=metrics.ece(*run['validation'], num_bins),
                     **metrics.evaluate_logits(test_logits, test_labels, num_bins)))
    sweeps[f'{run["alpha"]:g}'] = temperature.temperature_sweep(test_logits, test_labels,
                                                                 SWEEP_TEMPERATURES)
  hard = [r for r in runs if r['alpha'] == 0.0]
  summary = {}
  if hard:
    t = temperature.fit_temperature(*hard[0]['validation'], split='validation')
    rows.append(dict(kind='temperature_scaled', label='alpha=0 + temperature scaling',
                     alpha=0.0, temperature=t,
                     **metrics.evaluate_logits(*hard[0]['test'], num_bins, temperature=t)))
    summary['hard_targets_ece'] = rows[[r['alpha'] for r in rows].index(0.0)]['ece']
    summary['temperature_scaled'] = {'ece': rows[-1]['ece'], 'temperature': t}
  smoothed = [r for r in rows if r['kind'] == 'label_smoothing' and r['alpha'] > 0]
  if smoothed:
    best = min(smoothed, key=lambda r: r['validation_ece'])
    summary['label_smoothing'] = {'ece': best['ece'], 'alpha': best['alpha']}
    if hard:
      chosen = next(r for r in runs if r['alpha'] == best['alpha'])
      summary['bootstrap'] = bootstrap(hard[0]['test'], chosen['test'],
                                       summary['temperature_scaled']['temperature'], num_bins)
  return {'rows': rows, 'summary': summary, 'test_temperature_sweeps': sweeps}


def bootstrap(hard, smoothed, fitted_temperature, num_bins, resamples=RESAMPLES, seed=0):
  """95% intervals of Table 3's comparisons, the three ECEs computed on the same resamples of
  the test examples (paired): label smoothing minus hard targets, temperature scaling's gain,
  and the share of that gain label smoothing reaches. None when the runs' test labels differ
  (not the same examples)."""
  (hard_logits, labels), (smoothed_logits, smoothed_labels) = hard, smoothed
  if not np.array_equal(labels, smoothed_labels):
    return None
  indices = np.random.default_rng(seed).integers(0, len(labels), (resamples, len(labels)))
  ece = lambda logits, t: metrics.bootstrap_ece(logits, labels, indices, num_bins, t)
  hard_ece, scaled_ece = ece(hard_logits, 1.0), ece(hard_logits, fitted_temperature)
  smoothed_ece = ece(smoothed_logits, 1.0)
  gain = verdicts.percentile_interval(hard_ece - scaled_ece)
  share = None  # a share of a gain inside the sampling error is undefined
  if gain[0] > 0.0:
    with np.errstate(divide='ignore', invalid='ignore'):
      share = verdicts.percentile_interval((hard_ece - smoothed_ece) / (hard_ece - scaled_ece))
  return {'resamples': resamples, 'seed': seed, 'num_examples': len(labels),
          'smoothing_minus_hard': verdicts.percentile_interval(smoothed_ece - hard_ece),
          'scaling_gain': gain, 'share': share}


def claims(summary):
  """Table 3's claims from a calibration summary, each with its test and precision:
  [{'text', 'verdict', 'observed'}] (empty before the bootstrap was recorded)."""
  b = summary.get('bootstrap')
  if not b:
    return []
  ls, ts = summary['label_smoothing'], summary['temperature_scaled']
  test = (f'paired bootstrap of the {b["num_examples"]:,} test examples, {b["resamples"]} '
          'resamples, 95% interval')
  share = ('share of the reduction 95% interval {:.2f} to {:.2f}'.format(*b['share'])
           if b['share'] else 'no reduction beyond sampling error to share')
  return [
      {'text': 'label smoothing lowers the ECE of hard targets',
       'observed': f'ECE {ls["ece"]:.3f} (alpha {ls["alpha"]:g}) against '
                   f'{summary["hard_targets_ece"]:.3f}',
       'verdict': verdicts.interval_verdict(b['smoothing_minus_hard'], -1), 'test': test},
      {'text': 'label smoothing calibrates about as well as temperature scaling (at least '
               f'{verdicts.PAPER_LOWEST_SHARE:.0%} of its ECE reduction, the paper\'s lowest)',
       'observed': f'ECE {ls["ece"]:.3f} against {ts["ece"]:.3f} at T {ts["temperature"]:.2f}; '
                   f'{share}',
       'verdict': verdicts.share_verdict(b['scaling_gain'], b['share']), 'test': test}]


def write_calibration(table, output_dir, model, dataset, provenance, num_bins=metrics.NUM_BINS):
  """The calibration result (calibration.json), after the reliability diagram so that it lists
  it."""
  section_results.write(output_dir, RESULT, dict(table, model=model, dataset=dataset,
                                                 split='test', num_bins=num_bins), provenance)


def reliability_curves(table, runs):
  """The reliability diagram's curves (label, test logits, labels, T): every run at T = 1 and
  the hard-target run at its fitted temperature."""
  curves = [(f'alpha={r["alpha"]:g}', *r['test'], 1.0)
            for r in sorted(runs, key=lambda r: r['alpha'])]
  scaled = [r for r in table['rows'] if r['kind'] == 'temperature_scaled']
  if scaled:
    hard = next(r for r in runs if r['alpha'] == 0.0)
    curves.insert(1, (f'alpha=0, T={scaled[0]["temperature"]:.2f}', *hard['test'],
                      scaled[0]['temperature']))
  return curves
