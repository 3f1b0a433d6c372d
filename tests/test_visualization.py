"""Projection onto the templates' plane against hand-built examples."""
import json
import os

import numpy as np

from models import recipes
from tests.conftest import run_binary, write_cifar10_bin
from visualization import cluster_statistics, distillation, figures, plane_basis, project
from visualization import reliability


def _templates(seed=0, d=6, k=5):
  return np.random.default_rng(seed).normal(size=(d + 1, k))


def test_basis_is_orthonormal_and_spans_the_templates_plane():
  t = _templates()
  q = plane_basis(t, [1, 3, 4])
  np.testing.assert_allclose(q.T @ q, np.eye(2), atol=1e-12)
  for diff in (t[:, 3] - t[:, 1], t[:, 4] - t[:, 1]):
    np.testing.assert_allclose(q @ (q.T @ diff), diff, atol=1e-12)  # reconstructed exactly
  assert (q.T @ (t[:, 3] - t[:, 1]))[0] > 0 and abs((q.T @ (t[:, 3] - t[:, 1]))[1]) < 1e-12


def test_projection_of_hand_built_activations():
  # Templates in R^3 (2 activation dims + bias): w0 = 0, w1 = e1 * 2, w2 = e2 * 3 (+ anything
  # on the bias row stays out of the plane when the plane is spanned by e1 and e2).
  t = np.zeros((3, 3))
  t[0, 1], t[1, 2] = 2.0, 3.0
  q = plane_basis(t, [0, 1, 2])
  np.testing.assert_allclose(np.abs(q), [[1, 0], [0, 1], [0, 0]], atol=1e-12)
  acts = np.array([[1.0, 2.0], [-0.5, 4.0]])
  np.testing.assert_allclose(project(acts, q), acts, atol=1e-12)
  # A tilted plane: w1 - w0 = (1, 0, 1), w2 - w0 = (0, 1, 0); activation (a, b) + bias 1.
  t = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
  q = plane_basis(t, [0, 1, 2])
  x = np.array([[2.0, 5.0]])
  # [2, 5, 1] . (1, 0, 1)/sqrt(2) = 3/sqrt(2);  [2, 5, 1] . (0, 1, 0) = 5
  np.testing.assert_allclose(project(x, q), [[3 / np.sqrt(2), 5.0]], atol=1e-12)


def test_cluster_statistics_of_a_regular_triangle():
  angles = np.deg2rad([90, 210, 330])
  centers = np.stack([np.cos(angles), np.sin(angles)], 1) * 4
  offsets = np.array([[0.1, 0], [-0.1, 0], [0, 0.1], [0, -0.1]])
  points = np.concatenate([c + offsets for c in centers])
  labels = np.repeat([0, 1, 2], 4)
  stats = cluster_statistics(points, labels, [0, 1, 2])
  assert stats['equidistance'] < 1e-12
  np.testing.assert_allclose(list(stats['mean_distances'].values()), [4 * np.sqrt(3)] * 3)
  np.testing.assert_allclose(stats['mean_spread'], 0.1)


def test_figure_has_four_panels(tmp_path):
  rng = np.random.default_rng(0)
  panels = [(f'panel {i}', rng.normal(size=(30, 2)), np.repeat([0, 1, 2], 10)) for i in range(4)]
  fig = figures.projection_figure(panels, [0, 1, 2], ['a', 'b', 'c'], str(tmp_path / 'fig'))
  assert len(fig.axes) == 4
  assert [len(ax.collections) for ax in fig.axes] == [3] * 4
  assert os.path.getsize(tmp_path / 'fig.png') > 0 and os.path.getsize(tmp_path / 'fig.pdf') > 0


def test_penultimate_cifar10_binary_smoke(tmp_path):
  """Figure 1 binary end to end on tiny synthetic CIFAR-10 files (shortened schedule)."""
  write_cifar10_bin(str(tmp_path), per_batch=40, test=10)
  out = tmp_path / 'out'
  proc = run_binary('experiments.penultimate', '--dataset=cifar10', f'--data_dir={tmp_path}',
                    f'--output_dir={out}', '--train_steps=2', '--batch_size=16',
                    '--validation_size=60', '--examples_per_class=5', '--checkpoint_every=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'penultimate_stats.json') as f:
    stats = json.load(f)
  assert list(stats['panels']) == ['alpha=0, train', 'alpha=0, validation',
                                   'alpha=0.1, train', 'alpha=0.1, validation']
  points = np.load(out / 'penultimate_points.npz')
  assert points['alpha0_train_points'].shape[1] == 2
  assert sorted(set(points['alpha0.1_validation_labels'].tolist())) <= [0, 1, 2]
  assert os.path.getsize(out / 'penultimate.png') > 0
  # Reusing the runs without --data_dir reads the files they were trained on (the default
  # folder has no CIFAR-10 binaries) and projects the same points.
  runs = f'{out / "alpha_0_seed_0"},{out / "alpha_0.1_seed_0"}'
  proc = run_binary('experiments.penultimate', '--dataset=cifar10', f'--run_dirs={runs}',
                    f'--output_dir={tmp_path / "reused"}', '--examples_per_class=5')
  assert proc.returncode == 0, proc.stderr[-3000:]
  reused = np.load(tmp_path / 'reused' / 'penultimate_points.npz')
  for name in points.files:
    np.testing.assert_array_equal(reused[name], points[name])


def _overlaps(fig, artist, ax):
  """Whether artist's drawn box overlaps the axes' box (in display pixels)."""
  renderer = fig.canvas.get_renderer()
  a, b = artist.get_window_extent(renderer), ax.get_window_extent(renderer)
  return a.overlaps(b)


def test_figure5_labels_every_point_and_keeps_its_legend_off_the_axes(tmp_path):
  point = lambda group, setting, gamma, acc, **extra: {
      'group': group, 'setting': setting, 'seed': 0, 'gamma': gamma,
      'accuracy': {'validation': acc}, **extra}
  points = [point('teacher', 0.0, 0.0, 0.90), point('teacher', 0.3, 0.3, 0.91),
            point('student_baseline', 0.0, 0.0, 0.80),
            point('student_hard_teacher', 4.0, 0.28, 0.82),
            point('student_smoothed_teacher', 0.3, 0.33, 0.80),
            point('student_matched_temperature', 0.3, 0.33, 0.81, temperature=4.5123)]
  fig, summary = distillation.distillation_figure(points, str(tmp_path / 'figure5'))
  ax = fig.axes[0]
  texts = sorted(t.get_text() for t in ax.texts)
  assert texts == sorted(['alpha=0', 'alpha=0.3', 'alpha=0', 'T=4', 'alpha=0.3',
                          'T*=4.51 (alpha 0.3)'])
  assert summary['student_matched_temperature'][0]['temperature'] == 4.5123
  (legend,) = fig.legends
  assert len(legend.get_texts()) == 5 and not _overlaps(fig, legend, ax)
  assert os.path.getsize(tmp_path / 'figure5.png') > 0


def test_reliability_legend_stays_off_both_panels(tmp_path):
  rng = np.random.default_rng(0)
  logits, labels = rng.normal(size=(500, 10)) * 3, rng.integers(0, 10, 500)
  fig = reliability.plot_reliability([(f'curve {i}', logits * (i + 1), labels, 1.0)
                                      for i in range(4)], str(tmp_path / 'rel'))
  (legend,) = fig.legends
  assert len(legend.get_texts()) == 5  # the diagonal and four curves
  assert not any(_overlaps(fig, legend, ax) for ax in fig.axes)


def test_figure6_marks_the_recipes_learning_rate_drops(tmp_path):
  """ResNet-56's drops at 1/2 and 3/4 of 64,000 steps: 32,000 and 48,000 (paper Appendix A)."""
  config = recipes.recipe('resnet56', dataset='cifar10', train_steps=64_000)
  drops = recipes.learning_rate_drops(config, 64_000)
  assert drops == [32_000, 48_000]
  assert recipes.learning_rate_drops(recipes.recipe('fc'), 10_700) == []  # linear decay
  fig = distillation.mutual_information_figure(
      [('alpha=0', [0, 32_000, 64_000], [0.1, 2.0, 1.0])], 600, str(tmp_path / 'mi'),
      drops=drops)
  vertical = [line for line in fig.axes[0].lines if len(set(line.get_xdata())) == 1]
  assert sorted(line.get_xdata()[0] for line in vertical) == drops
  assert 'learning-rate drop' in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
