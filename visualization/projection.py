"""Paper Section 2: project penultimate activations onto the plane through three class templates.

A template w_k is column k of the last layer's weights with its bias appended; activations
get a constant 1 appended, so <[x, 1], w_k> is logit k.
"""
import numpy as np


def plane_basis(templates, classes):
  """Orthonormal [D + 1, 2] basis of the plane spanned by w_b - w_a and w_c - w_a (by QR)."""
  w = np.asarray(templates, np.float64)[:, list(classes)]
  q, r = np.linalg.qr(np.stack([w[:, 1] - w[:, 0], w[:, 2] - w[:, 0]], axis=1))
  return q * np.sign(np.diag(r))[None, :]  # fix QR's sign freedom: w_b - w_a along +x


def project(activations, basis):
  """[N, D] activations -> [N, 2] coordinates in the plane."""
  a = np.asarray(activations, np.float64)
  return np.concatenate([a, np.ones((len(a), 1))], axis=1) @ basis


def cluster_statistics(points, labels, classes):
  """Within-class spread and distances between class means in the projected plane.

  spread_k: RMS distance of class k's points to their mean. equidistance: std / mean of the
  three distances between class means (0 for a regular triangle).
  """
  means = {c: points[labels == c].mean(axis=0) for c in classes}
  spreads = {str(c): float(np.sqrt(((points[labels == c] - means[c]) ** 2).sum(1).mean()))
             for c in classes}
  pairs = [(a, b) for i, a in enumerate(classes) for b in classes[i + 1:]]
  distances = {f'{a}-{b}': float(np.linalg.norm(means[a] - means[b])) for a, b in pairs}
  d = np.array(list(distances.values()))
  mean_spread = float(np.mean(list(spreads.values())))
  return {'spread': spreads, 'mean_spread': mean_spread, 'mean_distances': distances,
          'equidistance': float(d.std() / d.mean()),
          'spread_over_distance': mean_spread / float(d.mean())}
