"""Batch norm under MirroredStrategy (issue 33): per-replica statistics, as the paper's TPU
batch norm had, checked against one-device references (tests/mirrored_batch_norm.py)."""
import json

from tests.conftest import run_binary


def test_a_mirrored_resnet_step_normalizes_each_replica_by_its_own_half():
  proc = run_binary('tests.mirrored_batch_norm')
  assert proc.returncode == 0, proc.stderr[-3000:]
  diff = json.loads(proc.stdout.strip().splitlines()[-1])
  assert diff['moved'] > 1e-3  # the step really changed the weights
  # Weights: the one-device step on the two halves normalized apart, not on the whole batch.
  assert diff['trainable_vs_ghost'] < 1e-5
  assert diff['trainable_vs_whole'] > 1e-2
  # Moving statistics (what checkpoints and evaluation read): the first replica's half.
  assert diff['moving_vs_first_half'] < 1e-5
  assert diff['first_bn_vs_numpy'] < 1e-5
  assert diff['moving_vs_whole'] > 1e-1
