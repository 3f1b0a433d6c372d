"""Projection onto the templates' plane against hand-built examples."""
import os

import numpy as np

from visualization import cluster_statistics, figures, plane_basis, project


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
  import json  # pylint: disable=g-import-not-at-top
  from tests.conftest import run_binary, write_cifar10_bin  # pylint: disable=g-import-not-at-top
  write_cifar10_bin(str(tmp_path), per_batch=40, test=10)
  out = tmp_path / 'out'
  proc = run_binary('experiments.penultimate_cifar10', f'--data_dir={tmp_path}',
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
  proc = run_binary('experiments.penultimate_cifar10', f'--run_dirs={runs}',
                    f'--output_dir={tmp_path / "reused"}', '--examples_per_class=5')
  assert proc.returncode == 0, proc.stderr[-3000:]
  reused = np.load(tmp_path / 'reused' / 'penultimate_points.npz')
  for name in points.files:
    np.testing.assert_array_equal(reused[name], points[name])
