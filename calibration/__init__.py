"""Implicit model calibration (paper Section 3): ECE, temperature scaling, the Table 3 rows."""
from calibration.metrics import (accuracy, ece, evaluate_logits, nll, NUM_BINS, reliability_bins,
                                 softmax)
from calibration.temperature import cross_fitted, fit_temperature, temperature_sweep
