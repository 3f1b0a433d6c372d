"""Every figure of the paper: penultimate projections (Figure 1), reliability diagrams (Figure 2),
BLEU/ECE/NLL against temperature (Figures 3-4), distillation (Figure 5), mutual information
(Figure 6). Figures take computed arrays; the computing lives in calibration and distillation."""
from visualization.projection import cluster_statistics, plane_basis, project
