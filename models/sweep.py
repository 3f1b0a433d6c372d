"""Paper Table 2's sweep: trains (or collects finished) classifier runs over a grid of alpha and
seeds, one run directory per point, and their accuracy result."""
import os

from calibration import metrics
from calibration.verdicts import mean_std
from data.run_directory import section_results
from models import classifier, recipes

ACCURACY = section_results.Kind('accuracy', 'table.json')  # Table 2's sweep


def run_dir_name(alpha, seed):
  return f'alpha_{alpha:g}_seed_{seed}'


def run_grid(output_dir, model, alphas, seeds, overrides, data_dir=None, options=None):
  """Trains every (alpha, seed) point that is not finished yet; returns {(alpha, seed): results}.
  options: models.trainer.RunOptions."""
  results = {}
  for alpha in alphas:
    for seed in seeds:
      config = recipes.recipe(model, **dict(overrides, label_smoothing=alpha, seed=seed))
      run_dir = os.path.join(output_dir, run_dir_name(alpha, seed))
      results[(alpha, seed)] = classifier.train_and_evaluate(config, run_dir, data_dir=data_dir,
                                                              options=options)
  return results


def accuracy_rows(results, split='test'):
  """One row per alpha: mean and std over seeds of accuracy, NLL and ECE (in %, -, -)."""
  rows = []
  for alpha in sorted({a for a, _ in results}):
    runs = [r for (a, _), r in sorted(results.items()) if a == alpha and r.get('finished')]
    if not runs:
      continue
    row = {'alpha': alpha, 'num_seeds': len(runs),
           'steps': runs[0]['steps_trained']}
    for metric in ('accuracy', 'nll', 'ece'):
      scale = 100.0 if metric == 'accuracy' else 1.0
      row[metric], row[metric + '_std'] = mean_std(
          [scale * r['metrics'][split][metric] for r in runs])
    rows.append(row)
  return rows


def write_table(rows, output_dir, model, dataset, provenance, split='test'):
  """The accuracy result (table.json) in output_dir."""
  section_results.write(output_dir, ACCURACY, {
      'title': f'{model} on {dataset}: accuracy vs label smoothing', 'model': model,
      'dataset': dataset, 'split': split, 'num_bins': metrics.NUM_BINS, 'rows': rows},
                        provenance)
