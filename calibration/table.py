"""Table 3 of the paper from trained runs: ECE with hard targets, after temperature scaling,
and with label smoothing; every split's role is fixed here (fit on validation, report test)."""

import numpy as np

from calibration import metrics, temperature
from data.run_directory import section_results

RESULT = section_results.Kind('calibration', 'calibration.json', ('reliability.png',))
SWEEP_TEMPERATURES = tuple(np.round(np.arange(0.5, 4.01, 0.1), 2))


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
  return {'rows': rows, 'summary': summary, 'test_temperature_sweeps': sweeps}


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
