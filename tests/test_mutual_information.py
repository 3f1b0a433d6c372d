"""Mutual-information estimator against closed forms, its sampling, its record and binaries."""
import json
import math
import os

import numpy as np
import pytest

from distillation import mi_record
from distillation.mutual_information import mutual_information
from models import classifier, recipes, trainer
from data.run_directory import run_files
from tests.conftest import run_binary, write_cifar10_bin

RNG = np.random.default_rng(0)


def _draws(mu, noise=1.0, num_draws=5, rng=RNG):
  """[N, L + 1]: the first L columns have mean exactly mu_x; the last is mu_x + noise."""
  mu = np.asarray(mu, np.float64)
  spread = rng.normal(size=(len(mu), num_draws))
  spread -= spread.mean(axis=1, keepdims=True)
  return np.concatenate([mu[:, None] + spread, (mu + noise * rng.normal(size=len(mu)))[:, None]],
                        axis=1)


def _transcribed(draws):
  """The paper's formula term by term in plain Python floats (an independent reference)."""
  n = len(draws)
  mu = [sum(row[:-1]) / (len(row) - 1) for row in draws]
  y = [row[-1] for row in draws]
  sigma2 = sum((y[x] - mu[x]) ** 2 for x in range(n)) / n
  total = 0.0
  for x in range(n):
    inner = sum(math.exp(-(y[x] - mu[j]) ** 2 / (2 * sigma2)) for j in range(n)) / n
    total += -(y[x] - mu[x]) ** 2 / (2 * sigma2) - math.log(inner)
  return total / n


def test_matches_a_term_by_term_transcription():
  draws = RNG.normal(size=(40, 6)) + np.repeat(RNG.normal(size=(40, 1)) * 2, 6, axis=1)
  assert mutual_information(draws) == pytest.approx(_transcribed(draws.tolist()), abs=1e-12)


def test_all_means_equal_gives_zero():
  assert mutual_information(_draws(np.full(60, 3.0))) == pytest.approx(0.0, abs=1e-12)


def test_two_tight_well_separated_clusters_give_log_2():
  mu = np.repeat([-100.0, 100.0], 30)
  assert mutual_information(_draws(mu)) == pytest.approx(math.log(2), abs=1e-9)


def test_means_far_apart_give_log_n():
  mu = 1000.0 * np.arange(50)
  assert mutual_information(_draws(mu)) == pytest.approx(math.log(50), abs=1e-9)


def test_invariant_under_affine_maps():
  draws = _draws(RNG.normal(size=80) * 3)
  for scale, shift in ((3.7, 5.0), (-0.2, -1.0), (1e4, 1e6)):
    assert mutual_information(scale * draws + shift) == pytest.approx(
        mutual_information(draws), abs=1e-9)


def test_never_exceeds_log_n_and_far_examples_do_not_overflow():
  for trial in range(20):
    rng = np.random.default_rng(trial)
    draws = _draws(rng.normal(size=30) * rng.uniform(0, 10), rng=rng)
    assert mutual_information(draws) <= math.log(30) + 1e-12
  lonely = _draws(np.r_[np.zeros(29), 1e8])  # exp(-huge) underflows without log-sum-exp
  assert np.isfinite(mutual_information(lonely))


def test_in_sample_reading_and_bad_input():
  draws = _draws(RNG.normal(size=40))
  first_as_y = np.concatenate([draws[:, :-1], draws[:, :1]], axis=1)  # y_x = the first draw
  assert mutual_information(draws, in_sample=True) == pytest.approx(
      _transcribed(first_as_y.tolist()), abs=1e-12)
  with pytest.raises(ValueError, match='identical'):
    mutual_information(np.ones((10, 6)))
  with pytest.raises(ValueError, match=r'\[N examples, L \+ 1 draws\]'):
    mutual_information(np.ones(10))


@pytest.mark.parametrize('chain', ['mnist_shift', 'resnet_cifar', 'alexnet_cifar'])
def test_each_example_and_each_draw_gets_its_own_augmentation(chain):
  channels = 1 if chain == 'mnist_shift' else 3
  image = RNG.integers(0, 256, size=(1, 28 if channels == 1 else 32, 28 if channels == 1 else 32,
                                     channels), dtype=np.uint8)
  views = [v.numpy() for v in mi_record.augmented_views(np.repeat(image, 40, 0), chain, 6, 0)]
  # Copies of one example differ from each other across the L + 1 draws...
  for i in range(40):
    distinct = {views[d][i].tobytes() for d in range(6)}
    assert len(distinct) >= 4
  # ...and identical examples in one batch get different offsets or flips.
  for view in views:
    assert len({v.tobytes() for v in view}) >= 10


def test_resumed_training_continues_the_record_without_gaps_or_duplicates(tmp_path, shared_data):
  config = recipes.recipe('fc', width=32, batch_size=64, train_steps=30, preprocessing='mnist')
  images, _ = mi_record.select_examples('mnist', [0, 1], 20, shared_data)
  assert images.shape == (40, 28, 28, 1)

  def train(run_dir, **options):
    record = lambda chief: [mi_record.MutualInformationRecord(run_dir, images, [0, 1],
                                                              'mnist_shift', 5, chief=chief)]
    return classifier.train_and_evaluate(
        config, run_dir, data_dir=shared_data, callbacks=record,
        options=trainer.RunOptions(checkpoint_every=10, log=lambda *a, **k: None, **options))
  whole, resumed = str(tmp_path / 'whole'), str(tmp_path / 'resumed')
  train(whole)
  train(resumed, stop_after_steps=17)  # killed after step 17; the last checkpoint is step 10
  assert [p['step'] for p in mi_record.load_record(resumed)['points']] == [0, 5, 10, 15]
  train(resumed)
  a, b = (mi_record.load_record(d)['points'] for d in (whole, resumed))
  assert [p['step'] for p in b] == [0, 5, 10, 15, 20, 25, 30]
  np.testing.assert_allclose([p['mutual_information'] for p in b],
                             [p['mutual_information'] for p in a], atol=1e-5)
  # Points of a stretch whose checkpoint is lost are recomputed by the run that redoes it, not
  # kept beside it: marker values left by a lost run must all be replaced.
  lost = tmp_path / 'lost'
  os.makedirs(lost)
  stale = {'settings': mi_record.load_record(whole)['settings'],
           'points': [dict(p, mutual_information=-1.0) for p in a]}
  (lost / mi_record.RECORD).write_text(json.dumps(stale))
  train(str(lost))
  np.testing.assert_allclose([p['mutual_information'] for p in mi_record.load_record(lost)['points']],
                             [p['mutual_information'] for p in a], atol=1e-5)
  # The record of a run whose steps are XLA-compiled (as on TPUs) is the same record.
  compiled = str(tmp_path / 'compiled')
  train(compiled, jit_compile=True)
  c = mi_record.load_record(compiled)['points']
  assert [p['step'] for p in c] == [p['step'] for p in a]
  np.testing.assert_allclose([p['mutual_information'] for p in c],
                             [p['mutual_information'] for p in a], atol=1e-4)
  with pytest.raises(run_files.RunDirError, match='other settings'):
    mi_record.MutualInformationRecord(resumed, images, [0, 1], 'mnist_shift', every=7)


def test_cifar10_binary_end_to_end_on_tiny_files(tmp_path):
  write_cifar10_bin(str(tmp_path), per_batch=24, test=16)
  out = tmp_path / 'mi'
  proc = run_binary('experiments.mutual_information', '--dataset=cifar10', f'--data_dir={tmp_path}',
                    f'--output_dir={out}', '--train_steps=4', '--every=2', '--batch_size=8',
                    '--validation_size=40', '--examples_per_class=3', '--checkpoint_every=2',
                    '--num_init_seeds=2', '--resnet_blocks=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'mutual_information_points.json') as f:
    points = json.load(f)
  assert set(points['runs']) == {'alpha=0', 'alpha=0.1'}
  for run in points['runs'].values():
    assert run['steps'] == [0, 2, 4]
    assert all(v <= math.log(6) + 1e-9 for v in run['mutual_information'])
  # Fresh networks: seed 0 is the network both seed-0 runs started from, so its estimate is
  # their step-0 point (recorded by the training callback); seed 1 is another network.
  init = points['at_initialization']
  assert init['seeds'] == [0, 1]
  for run in points['runs'].values():
    assert init['mutual_information'][0] == pytest.approx(run['mutual_information'][0], abs=1e-6)
  assert init['mutual_information'][1] != pytest.approx(init['mutual_information'][0], abs=1e-3)
  assert os.path.getsize(out / 'mutual_information.png') > 0
  again = run_binary('experiments.mutual_information', '--dataset=cifar10',
                     f'--data_dir={tmp_path}', f'--output_dir={tmp_path / "mi2"}',
                     '--classes=0,0')
  assert again.returncode != 0 and 'give two different classes' in again.stderr
