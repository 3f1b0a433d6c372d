"""The run directory: every file through tf.io.gfile (so gs:// works), checkpoints through
tf.train.CheckpointManager, and only the chief of a multi-worker job writing there.

Layout: config.json, checkpoints/ (ckpt-STEP.*, the last two kept), tensorboard/, and when
finished model.weights.h5, logits.npz and results.json.
"""
import io
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

gfile = tf.io.gfile
CHECKPOINTS = 'checkpoints'


class RunDirError(Exception):
  """A user-facing problem with a run directory (foreign, unfinished, unwritable, a file)."""


def is_chief(strategy):
  """True unless this process is a non-chief worker of a multi-worker job (TF's rule)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None)
  if task_type in (None, 'chief'):
    return True
  has_chief = 'chief' in (resolver.cluster_spec().as_dict() if resolver else {})
  return task_type == 'worker' and resolver.task_id == 0 and not has_chief


def make_dir(path):
  """Creates `path` (and parents); one-line errors for a file in the way or no permission."""
  if gfile.exists(path) and not gfile.isdir(path):
    raise RunDirError(f'{path} is a file, not a directory; give a new or existing directory.')
  try:
    gfile.makedirs(path)
  except (OSError, tf.errors.OpError) as e:
    raise RunDirError(f'cannot create {path} ({getattr(e, "message", e)}); choose a writable '
                      'location.') from None


def write_bytes(path, payload):
  """Writes atomically: a temporary name, then a rename (a kill never leaves half a file)."""
  tmp = path + '.tmp'
  try:
    with gfile.GFile(tmp, 'wb') as f:
      f.write(payload)
    gfile.rename(tmp, path, overwrite=True)
  except (OSError, tf.errors.OpError) as e:
    raise RunDirError(f'cannot write {path} ({getattr(e, "message", e)}); choose a writable '
                      'location.') from None


def write_json(path, value):
  write_bytes(path, json.dumps(value, indent=2).encode())


def read_json(path):
  with gfile.GFile(path, 'rb') as f:
    return json.loads(f.read())


def write_npz(path, **arrays):
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  write_bytes(path, buffer.getvalue())


def write_text(path, text):
  write_bytes(path, text.encode())


def save_figure(fig, path_stem, extensions=('png', 'pdf'), dpi=150):
  """fig as path_stem.png and .pdf, through gfile (matplotlib writes local files only)."""
  for extension in extensions:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=extension, dpi=dpi)
    write_bytes(f'{path_stem}.{extension}', buffer.getvalue())


def read_npz(path):
  """{name: array} of an .npz file anywhere gfile reaches."""
  with gfile.GFile(path, 'rb') as f:
    with np.load(io.BytesIO(f.read())) as values:
      return {k: values[k] for k in values.files}


class Checkpoints:
  """Model and optimizer state at a step, saved by every worker and restored from the chief's.

  A multi-worker save is collective, so non-chief workers save too, into a private temporary
  directory that `close` deletes (TensorFlow's multi-worker guide); all restore from the
  chief's directory, which they share (gs:// on real clusters).
  """

  def __init__(self, model, optimizer, output_dir, chief=True, max_to_keep=2):
    # Every variable, listed: tracking the model object would miss the state of Keras' random
    # seed generators (dropout), and a resumed run would then draw other masks.
    self.optimizer = optimizer
    self.checkpoint = tf.train.Checkpoint(model=[v.value for v in model.variables],
                                          optimizer=[v.value for v in optimizer.variables])
    self.chief_dir = os.path.join(output_dir, CHECKPOINTS)
    self._temp = None if chief else tempfile.mkdtemp(prefix='worker_checkpoints_')
    self.manager = tf.train.CheckpointManager(self.checkpoint, self._temp or self.chief_dir,
                                              max_to_keep=max_to_keep)

  def restore(self):
    """Restores the chief's latest checkpoint, if any; returns its step (0 if none)."""
    latest = tf.train.latest_checkpoint(self.chief_dir)
    if latest is None:
      return 0
    try:
      self.checkpoint.restore(latest).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      raise RunDirError(f'{latest} does not match this model ({str(e).splitlines()[0]}); '
                        f'delete {self.chief_dir} to start over.') from None
    return int(self.optimizer.iterations.numpy())

  def save(self, step):
    self.manager.save(checkpoint_number=step)

  def close(self):
    if self._temp:
      shutil.rmtree(self._temp, ignore_errors=True)
