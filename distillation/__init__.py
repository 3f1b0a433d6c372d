"""Knowledge distillation (paper Section 4): losses, cached teacher outputs, smoothness index."""
from distillation.losses import DistillationLoss, pack_targets
from distillation.smoothness import smoothness_index
