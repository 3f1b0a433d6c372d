"""A run's checkpoints (checkpoints/ in its run directory) through tf.train.CheckpointManager:
model and optimizer state at a step, the last two kept, restored from the newest that reads back."""
import os
import shutil
import tempfile

import tensorflow as tf

from data.run_directory import run_files
from data.run_directory.run_files import RunDirError

CHECKPOINTS = 'checkpoints'


def latest_checkpoint_step(run_dir):
  """The step of the run's latest checkpoint (0 when it has none)."""
  latest = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINTS))
  return int(latest.rsplit('-', 1)[1]) if latest else 0


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
    self.step = 0  # of the last checkpoint restored or written

  def restore(self, log=print):
    """Restores the newest of the chief's checkpoints that reads back; returns its step (0 if
    none). One torn by a kill or a full disk is passed over with one line."""
    state = tf.train.get_checkpoint_state(self.chief_dir)
    candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
    failures = []
    for prefix in candidates:
      try:
        self.checkpoint.restore(prefix).assert_existing_objects_matched()
      except AssertionError as e:  # read back, but holds another model's variables
        raise RunDirError(f'{prefix} does not match this model ({str(e).splitlines()[0]}); '
                          f'delete {self.chief_dir} to start over.') from None
      except (IndexError, ValueError, OSError, tf.errors.OpError) as e:
        failures.append(f'{os.path.basename(prefix)}: {run_files.first_line(e)}')
        continue
      self.step = int(self.optimizer.iterations.numpy())
      if failures:
        log(f'warning: {"; ".join(failures)} (unreadable, probably torn by a kill or a full '
            f'disk); resuming from {os.path.basename(prefix)} (step {self.step}) instead.',
            flush=True)
      return self.step
    if failures:
      raise RunDirError(f'no checkpoint in {self.chief_dir} reads back ({"; ".join(failures)}); '
                        f'delete {self.chief_dir} to train this run from the start.')
    return 0

  def save(self, step):
    try:
      self.manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
      where = f'checkpoint ckpt-{step} under {self.chief_dir}'
      resume = (f'it resumes from step {self.step}' if self.step
                else 'it starts again from step 0')
      if run_files.out_of_space(e):
        raise RunDirError(f'no space left on the device while writing {where}; free space and '
                          f'rerun the same command: {resume}.') from None
      raise RunDirError(f'cannot write {where} ({run_files.first_line(e)}); make it writable '
                        f'and rerun the same command: {resume}.') from None
    self.step = step

  def close(self):
    if self._temp:
      shutil.rmtree(self._temp, ignore_errors=True)
