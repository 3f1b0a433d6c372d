"""Knowledge distillation (paper Section 4): losses, the student task, smoothness index."""
from distillation.losses import DistillationLoss
from distillation.smoothness import smoothness_index
from distillation.teacher import StudentTask, train_student
