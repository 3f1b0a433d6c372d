"""Accuracy, NLL and expected calibration error from logits, accumulated in float64.

Binning convention (Guo et al. 2017): with B equal-width bins, bin b holds confidences in
(b/B, (b+1)/B]; bin 0 also holds confidence 0. A confidence exactly on an inner edge goes to
the lower bin.
"""
import numpy as np

NUM_BINS = 15


def log_softmax(logits, temperature=1.0):
  z = np.asarray(logits, np.float64) / temperature
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits, temperature=1.0):
  return np.exp(log_softmax(logits, temperature))


def nll(logits, labels, temperature=1.0):
  """Mean negative log-likelihood of the true labels."""
  log_p = log_softmax(logits, temperature)
  return float(-log_p[np.arange(len(labels)), labels].mean())


def accuracy(logits, labels):
  return float(np.mean(np.argmax(logits, axis=-1) == labels))


def top_k_accuracy(logits, labels, k=5):
  """Fraction of examples whose label is among the k largest logits (ties: any order)."""
  top = np.argpartition(-np.asarray(logits), k - 1, axis=-1)[:, :k]
  return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=-1)))


def bin_index(confidences, num_bins=NUM_BINS):
  return np.clip(np.ceil(np.asarray(confidences, np.float64) * num_bins).astype(int) - 1, 0,
                 num_bins - 1)


def reliability_bins(logits, labels, num_bins=NUM_BINS, temperature=1.0):
  """Per bin: count, accuracy and mean confidence (NaN for empty bins)."""
  probs = softmax(logits, temperature)
  confidences = probs.max(axis=-1)
  correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
  bins = bin_index(confidences, num_bins)
  counts = np.bincount(bins, minlength=num_bins).astype(np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    acc = np.bincount(bins, correct, num_bins) / counts
    conf = np.bincount(bins, confidences, num_bins) / counts
  return {'count': counts, 'accuracy': acc, 'confidence': conf,
          'edges': np.linspace(0.0, 1.0, num_bins + 1)}


def ece(logits, labels, num_bins=NUM_BINS, temperature=1.0):
  """sum_b (n_b / N) |acc_b - conf_b| over non-empty bins."""
  bins = reliability_bins(logits, labels, num_bins, temperature)
  filled = bins['count'] > 0
  weights = bins['count'][filled] / bins['count'].sum()
  return float(np.sum(weights * np.abs(bins['accuracy'][filled] - bins['confidence'][filled])))


def evaluate_logits(logits, labels, num_bins=NUM_BINS, temperature=1.0):
  """The metrics dict every results.json carries for a split (top-5 accuracy too where there
  are more than 10 classes, as ImageNet's tables report it)."""
  metrics = {'accuracy': accuracy(logits, labels), 'nll': nll(logits, labels, temperature),
             'ece': ece(logits, labels, num_bins, temperature), 'num_examples': int(len(labels))}
  if np.shape(logits)[-1] > 10:
    metrics['top5_accuracy'] = top_k_accuracy(logits, labels, 5)
  return metrics


def bootstrap_ece(logits, labels, indices, num_bins=NUM_BINS, temperature=1.0):
  """ECE on each row of `indices` (resamples of the examples, shape (resamples, n)), computed
  at once: a bin's |acc_b - conf_b| n_b / N is |sum over its examples of (correct - conf)| / N."""
  probs = softmax(logits, temperature)
  confidences = probs.max(axis=-1)
  gap = (probs.argmax(axis=-1) == labels) - confidences
  bins = bin_index(confidences, num_bins)
  resamples, n = np.shape(indices)
  keys = (np.arange(resamples)[:, None] * num_bins + bins[indices]).ravel()
  sums = np.bincount(keys, gap[indices].ravel(), resamples * num_bins)
  return np.abs(sums.reshape(resamples, num_bins)).sum(axis=1) / n
