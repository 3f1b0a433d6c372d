"""The paper's smoothness index gamma of a teacher (the x-axis of Figure 5)."""
import numpy as np

from calibration.metrics import softmax


def smoothness_index(logits, labels, temperature=1.0):
  """gamma = E_x[ sum_k (1 - y_k) p_k(T) ] * K / (K - 1) with one-hot y.

  For a network that outputs exactly the uniformly smoothed labels, gamma = alpha.
  """
  probs = softmax(logits, temperature)
  k = probs.shape[-1]
  off_target = 1.0 - probs[np.arange(len(labels)), labels]
  return float(off_target.mean() * k / (k - 1))
