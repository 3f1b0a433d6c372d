"""Implicit model calibration: ECE, reliability diagrams and temperature scaling."""
from calibration.metrics import accuracy, ece, evaluate_logits, nll, reliability_bins, softmax
