"""Penultimate-layer representations (paper Section 2, Figure 1)."""
from visualization.projection import cluster_statistics, plane_basis, project
