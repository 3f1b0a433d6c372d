"""Knowledge distillation (paper Section 4): losses, the student objective, smoothness index."""
from distillation.losses import DistillationLoss
from distillation.smoothness import smoothness_index
from distillation.teacher import student_objective, train_student
