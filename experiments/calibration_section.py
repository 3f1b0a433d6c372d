"""Table 3 and the reliability diagram of finished runs: the glue the two calibration binaries
(experiments.calibration, experiments.calibration_cifar100) share; it loads runs, draws and
writes, so it sits above visualization."""
import os

from calibration import metrics, table
from data.run_directory import run_files
from experiments import common
from models import classifier
from visualization import reliability


def calibrate_run_dirs(run_dirs, output_dir, data_dir=None, num_bins=metrics.NUM_BINS):
  """Paper Table 3 and the reliability diagram for finished runs of one model and dataset."""
  runs, configs = [], []
  for run_dir in run_dirs:
    config, splits = classifier.run_logits(run_dir, data_dir)
    if 'validation' not in splits:
      raise ValueError(f'{run_dir} has no validation split (validation_size=0); temperature '
                       'scaling needs one.')
    configs.append(config)
    runs.append(dict(alpha=config.label_smoothing, **splits))
  if len({(c.model, c.dataset) for c in configs}) != 1:
    raise ValueError('--run_dirs mix models or datasets; calibrate one model/dataset at a time.')
  result = table.calibration_table(runs, num_bins)
  model, dataset = configs[0].model, configs[0].dataset
  run_files.make_dir(output_dir)
  reliability.plot_reliability(table.reliability_curves(result, runs),
                               os.path.join(output_dir, 'reliability'), f'{model} on {dataset}',
                               num_bins)
  table.write_calibration(result, output_dir, model, dataset,
                          common.provenance(run_dirs, data_dir), num_bins)
