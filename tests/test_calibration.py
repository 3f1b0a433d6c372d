"""ECE, temperature scaling and reliability diagrams against hand-computed and float64 references."""
import json
import os

import numpy as np
import pytest

import calibration
from calibration import metrics, table as calibration_table, verdicts
from tests.conftest import run_binary, to_planes
from visualization import reliability


def _logits(probs):
  return np.log(np.asarray(probs, np.float64))


def test_ece_hand_computed_example():
  probs = [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.62, 0.28, 0.1], [0.5, 0.25, 0.25]]
  labels = np.array([0, 1, 0, 2])
  # bins 13 (0.9, 0.9: acc 1/2), 9 (0.62: acc 1), 7 (0.5: acc 0)
  want = 2 / 4 * abs(0.5 - 0.9) + 1 / 4 * abs(1 - 0.62) + 1 / 4 * abs(0 - 0.5)
  assert calibration.ece(_logits(probs), labels) == pytest.approx(want, abs=1e-12)


def _reference_ece(probs, labels, num_bins):
  """Straightforward loop over (lo, hi] bins in float64, as in Guo et al.'s code."""
  conf, pred = probs.max(1), probs.argmax(1)
  edges = np.linspace(0, 1, num_bins + 1)
  total = 0.0
  for b in range(num_bins):
    in_bin = (conf > edges[b]) & (conf <= edges[b + 1])
    if b == 0:
      in_bin |= conf == 0
    if in_bin.any():
      total += in_bin.mean() * abs((pred[in_bin] == labels[in_bin]).mean() - conf[in_bin].mean())
  return total


@pytest.mark.parametrize('num_bins', [1, 5, 15, 30])
def test_ece_matches_independent_float64_implementation(num_bins):
  rng = np.random.default_rng(num_bins)
  logits = rng.normal(size=(2000, 10)) * 3
  labels = rng.integers(0, 10, 2000)
  e = np.exp(logits - logits.max(1, keepdims=True))
  probs = e / e.sum(1, keepdims=True)
  assert calibration.ece(logits, labels, num_bins) == pytest.approx(
      _reference_ece(probs, labels, num_bins), abs=1e-12)


def test_ece_edge_cases():
  # Confidence exactly on an inner edge goes to the lower bin; 0 and 1 to the end bins.
  np.testing.assert_array_equal(metrics.bin_index([0.0, 0.25, 0.5, 0.75, 1.0, 0.26], 4),
                                [0, 0, 1, 2, 3, 1])
  # A single bin: |accuracy - mean confidence|.
  probs = np.array([[0.7, 0.3], [0.8, 0.2], [0.6, 0.4]])
  labels = np.array([0, 1, 0])
  assert calibration.ece(_logits(probs), labels, 1) == pytest.approx(abs(2 / 3 - 0.7))
  # Empty bins are skipped, and reported as NaN with zero count.
  bins = calibration.reliability_bins(_logits(probs), labels, 15)
  assert bins['count'].sum() == 3 and (bins['count'] == 0).sum() == 12
  assert np.isnan(bins['accuracy'][0])
  # All correct with confidence ~1: ECE ~0.
  logits = np.eye(4)[[0, 1, 2, 3]] * 50
  assert calibration.ece(logits, np.arange(4)) < 1e-12


def _calibrated_logits(n=20000, k=10, seed=0):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(n, k)) * 2
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  labels = (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
  return logits, labels


@pytest.mark.parametrize('scale', [1.0, 3.0, 10.0, 0.5])
def test_temperature_scaling_recovers_the_temperature(scale):
  logits, labels = _calibrated_logits()
  t = calibration.fit_temperature(logits * scale, labels, split='validation')
  assert t == pytest.approx(scale, rel=0.05)
  assert calibration.ece(logits * scale, labels, temperature=t) < 0.02


def test_temperature_cannot_be_fitted_on_test():
  logits, labels = _calibrated_logits(100)
  with pytest.raises(ValueError, match='held-out split'):
    calibration.fit_temperature(logits, labels, split='test')


def test_cross_fitted_scaling_fits_each_half_and_scores_the_other():
  """Against a brute-force grid of the NLL in float64: each half's temperature, then every
  example scored at the other half's. Groups of 5 examples (a sentence's tokens) stay whole."""
  logits, labels = _calibrated_logits(3000, seed=4)
  logits = logits * np.where(np.arange(3000) < 1500, 2.0, 3.0)[:, None]  # halves differ
  groups = np.arange(3000) // 5
  odd = groups % 2 == 1

  def nll_at(t, rows):
    z = logits[rows] / t
    z = z - z.max(1, keepdims=True)
    return -(z[np.arange(len(z)), labels[rows]] - np.log(np.exp(z).sum(1))).mean()
  grid = np.arange(1.0, 4.0, 0.001)
  want = [grid[np.argmin([nll_at(t, odd == half) for t in grid])] for half in (False, True)]
  got = calibration.cross_fitted(logits, labels, groups)
  assert got['temperatures'] == pytest.approx(want, abs=2e-3)
  scaled = logits / np.where(odd, got['temperatures'][0], got['temperatures'][1])[:, None]
  p = np.exp(scaled - scaled.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  assert got['nll'] == pytest.approx(-np.log(p[np.arange(3000), labels]).mean(), rel=1e-9)
  assert got['ece'] == pytest.approx(calibration.ece(scaled, labels), abs=1e-12)
  in_sample = calibration.fit_temperature(logits, labels, split='validation')
  assert got['nll'] >= calibration.nll(logits, labels, in_sample)  # out of sample: no better


def test_bootstrap_ece_is_the_ece_of_each_resample():
  """Against metrics.ece (tested by hand above) on each resample, one at a time."""
  logits, labels = _calibrated_logits(400, seed=5)
  indices = np.random.default_rng(1).integers(0, 400, (7, 400))
  for t in (1.0, 2.5):
    want = [calibration.ece(logits[i], labels[i], 15, t) for i in indices]
    np.testing.assert_allclose(metrics.bootstrap_ece(logits, labels, indices, 15, t), want,
                               rtol=1e-12, atol=1e-15)


def test_interval_and_share_verdicts_on_hand_made_intervals():
  assert verdicts.interval_verdict([-0.05, -0.01], -1) == 'holds beyond sampling error'
  assert verdicts.interval_verdict([0.01, 0.03], -1) == 'the opposite holds beyond sampling error'
  assert verdicts.interval_verdict([-0.01, 0.02], -1) == (
      'not observable at this precision (95% interval -0.010 to +0.020)')
  gain = [0.05, 0.10]  # temperature scaling lowers the ECE beyond sampling error
  assert verdicts.share_verdict(gain, [0.80, 1.10]) == 'holds beyond sampling error'
  assert verdicts.share_verdict(gain, [0.73, 0.90]) == 'holds beyond sampling error'  # the bound
  assert verdicts.share_verdict(gain, [0.20, 0.50]) == 'does not hold beyond sampling error'
  assert verdicts.share_verdict(gain, [0.50, 0.90]) == 'not established at this precision'
  assert verdicts.share_verdict([-0.002, 0.01], None).startswith(
      'not observable: temperature scaling does not lower the hard-target ECE')


def _calibration_runs(scale, smoothed):
  """A hard-target run whose logits are `scale` x calibrated ones (over-confident above 1), and
  a label-smoothing run whose logits are `smoothed`(hard logits, its fitted temperature)."""
  splits = {s: _calibrated_logits(4000, seed=seed) for s, seed in (('validation', 6),
                                                                     ('test', 7))}
  hard = {s: (logits * scale, labels) for s, (logits, labels) in splits.items()}
  t = calibration.fit_temperature(*hard['validation'], split='validation')
  return [dict(alpha=0.0, **hard),
          dict(alpha=0.1, **{s: (smoothed(z, t), y) for s, (z, y) in hard.items()})]


def test_table_3_verdicts_from_the_paired_bootstrap():
  """Label smoothing that equals temperature scaling (the hard logits divided by the fitted T)
  reaches exactly all of its gain on every resample; one that keeps the hard logits reaches
  none; on an already calibrated hard-target network there is no gain to share."""
  claims = lambda runs: calibration_table.claims(calibration_table.calibration_table(runs)[
      'summary'])
  lowered, as_well = claims(_calibration_runs(3.0, lambda z, t: z / t))
  assert lowered['verdict'] == 'holds beyond sampling error'
  assert as_well['verdict'] == 'holds beyond sampling error'
  assert 'share of the reduction 95% interval 1.00 to 1.00' in as_well['observed']
  lowered, as_well = claims(_calibration_runs(3.0, lambda z, t: z * 1.0))
  assert lowered['verdict'].startswith('not observable at this precision (95% interval +0.000 '
                                       'to +0.000)')
  assert as_well['verdict'] == 'does not hold beyond sampling error'
  _, as_well = claims(_calibration_runs(1.0, lambda z, t: z / 2.0))
  assert as_well['verdict'].startswith('not observable: temperature scaling does not lower')


def test_nll_matches_float64_reference():
  logits, labels = _calibrated_logits(500, seed=3)
  p = np.exp(logits / 2.0)
  p /= p.sum(1, keepdims=True)
  assert calibration.nll(logits, labels, 2.0) == pytest.approx(
      -np.log(p[np.arange(500), labels]).mean(), rel=1e-12)


def test_reliability_diagram_files_and_bins(tmp_path):
  logits, labels = _calibrated_logits(3000)
  stem = str(tmp_path / 'rel')
  fig = reliability.plot_reliability([('calibrated', logits, labels, 1.0),
                                      ('overconfident', logits * 3, labels, 1.0)], stem)
  for ext in ('png', 'pdf', 'json'):
    assert os.path.getsize(f'{stem}.{ext}') > 0
  with open(f'{stem}.json') as f:
    stored = json.load(f)
  assert [len(c['count']) for c in stored['curves']] == [15, 15]
  # After the diagonal, per curve: the line through bins of >= 10 examples, then the hollow
  # markers of the sparser non-empty bins; the lower panel's bars hold every bin's count.
  plotted = fig.axes[0].lines[1:]
  assert len(plotted) == 4
  for (line, hollow), curve in zip(zip(plotted[::2], plotted[1::2]), stored['curves']):
    count = np.array(curve['count'])
    assert len(line.get_xdata()) == np.sum(count >= 10) > 0
    assert len(hollow.get_xdata()) == np.sum((count > 0) & (count < 10))
    assert hollow.get_markerfacecolor() == 'none' and hollow.get_linestyle() == 'None'
  heights = [p.get_height() for p in fig.axes[1].patches]
  assert heights == [c for curve in stored['curves'] for c in curve['count']]
  assert sum(heights) == 2 * 3000
  # One example alone in a bin is hollow, not on the line.
  few = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [3.0, 0.0]])  # 3 at 0.5, 1 at 0.95
  fig = reliability.plot_reliability([('few', few, np.array([0, 1, 0, 1]), 1.0)],
                                     str(tmp_path / 'few'))
  line, hollow = fig.axes[0].lines[1:]
  assert len(line.get_xdata()) == 0 and len(hollow.get_xdata()) == 2


def _write_tiny_cifar100(directory, n_train=120, n_test=40):
  d = os.path.join(directory, 'cifar-100-binary')
  os.makedirs(d)
  rng = np.random.default_rng(0)
  for name, n in (('train.bin', n_train), ('test.bin', n_test)):
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.stack([rng.integers(0, 20, n), rng.integers(0, 100, n)], 1).astype(np.uint8)
    np.concatenate([labels, to_planes(images)], 1).tofile(os.path.join(d, name))


def test_calibration_cifar100_binary_smoke(tmp_path):
  """The Table 3 binary end to end on tiny synthetic CIFAR-100 files (shortened schedule)."""
  _write_tiny_cifar100(str(tmp_path))
  out = str(tmp_path / 'out')
  proc = run_binary('experiments.calibration_cifar100', f'--data_dir={tmp_path}',
                    f'--output_dir={out}', '--train_steps=2', '--batch_size=8',
                    '--validation_size=40', '--checkpoint_every=2', '--resnet_blocks=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(out, 'calibration.json')) as f:
    table = json.load(f)
  assert [r['kind'] for r in table['rows']] == ['label_smoothing'] * 2 + ['temperature_scaled']
  assert set(table['summary']) == {'hard_targets_ece', 'temperature_scaled', 'label_smoothing',
                                   'bootstrap'}
  assert table['summary']['label_smoothing']['alpha'] == 0.05
  assert os.path.exists(os.path.join(out, 'reliability.png'))
  # The generic binary reuses the finished runs (no retraining) and gives the same table.
  runs = ','.join(os.path.join(out, d) for d in ('alpha_0_seed_0', 'alpha_0.05_seed_0'))
  proc = run_binary('experiments.calibration', f'--run_dirs={runs}',
                    f'--output_dir={tmp_path / "generic"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / 'generic' / 'calibration.json') as f:
    assert json.load(f)['rows'] == table['rows']
