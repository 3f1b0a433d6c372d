"""The run directory's files: every one through tf.io.gfile (so gs:// works), written atomically,
and only by the chief of a multi-worker job (checkpoints: run_directory.checkpoints).

Layout: config.json, checkpoints/ (ckpt-STEP.*, the last two kept), tensorboard/, and when
finished model.weights.h5, logits.npz and results.json.

Every file read back that does not parse is one RunDirError naming the file, what is wrong and
the fix (never a parser's traceback); a full disk names the file and that rerunning resumes.
"""
import errno
import io
import json
import os
import zipfile

import numpy as np
import tensorflow as tf

gfile = tf.io.gfile


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


# How each file of a run directory or section folder is made again when it is unreadable.
_FIXES = {
    'config.json': 'delete it and rerun the command that trained this run: it writes the file '
                   'again from its flags and resumes from the checkpoints',
    'results.json': 'delete it and rerun the command that trained this run: it evaluates again '
                    'from the final checkpoint (or trains again where there is none)',
    'mutual_information.json': 'the record is made during training: delete it and the '
                               'checkpoints/ folder beside it, then rerun the command that '
                               'trained this run',
    'translation_eval.json': 'delete it and rerun the translation section: the evaluation is '
                             'computed again (hypotheses already written are reused)',
    'decoding.json': 'delete it and rerun the translation section: the hypotheses are decoded '
                     'again',
    'logits.npz': 'delete it: it is computed again from model.weights.h5 when next needed',
}
_DEFAULT_FIX = 'delete it and rerun the command that wrote it'


def unreadable(path, reason, fix=None):
  """The one-line RunDirError for a file that exists but does not read back."""
  fix = fix or _FIXES.get(os.path.basename(path), _DEFAULT_FIX)
  return RunDirError(f'{path} is unreadable ({reason}); it was cut off or changed since it was '
                     f'written. Fix: {fix}.')


def out_of_space(error):
  """True when an OSError or TensorFlow error says the device is full."""
  return (getattr(error, 'errno', None) == errno.ENOSPC
          or 'No space left on device' in str(getattr(error, 'message', error)))


def write_bytes(path, payload):
  """Writes atomically: a temporary name, then a rename (a kill never leaves half a file)."""
  tmp = path + '.tmp'
  try:
    with gfile.GFile(tmp, 'wb') as f:
      f.write(payload)
    gfile.rename(tmp, path, overwrite=True)
  except (OSError, tf.errors.OpError) as e:
    if out_of_space(e):
      _remove_quietly(tmp)
      raise RunDirError(f'no space left on the device while writing {path}; free space and '
                        'rerun the same command (finished work is kept).') from None
    raise RunDirError(f'cannot write {path} ({getattr(e, "message", e)}); choose a writable '
                      'location.') from None


def _remove_quietly(path):
  try:
    gfile.remove(path)
  except (OSError, tf.errors.OpError):
    pass


def write_json(path, value):
  write_bytes(path, json.dumps(value, indent=2).encode())


def read_json(path, fix=None):
  """The JSON value in `path`; a file that does not parse is one RunDirError with `fix` (by
  default the fix for that file name)."""
  with gfile.GFile(path, 'rb') as f:
    payload = f.read()
  try:
    return json.loads(payload)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise unreadable(path, f'not valid JSON: {e}', fix) from None


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


def read_npz(path, fix=None):
  """{name: array} of an .npz file anywhere gfile reaches (RunDirError if it does not parse)."""
  with gfile.GFile(path, 'rb') as f:
    payload = f.read()
  try:
    with np.load(io.BytesIO(payload)) as values:
      return {k: values[k] for k in values.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise unreadable(path, f'not a valid .npz archive: {e}', fix) from None


def first_line(error):
  text = str(getattr(error, 'message', None) or error) or type(error).__name__
  return text.strip().splitlines()[0]


def relative_to(path, folder):
  """`path` as recorded in a results file in `folder`: relative to it when both are local
  paths, so a clone of the repository can follow it; unchanged otherwise (gs://, elsewhere)."""
  if '://' in path or '://' in folder:
    return path
  return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


def resolve(path, folder):
  """Inverse of relative_to: a recorded path read back from a results file in `folder`."""
  if '://' in path or os.path.isabs(path):
    return path
  return os.path.join(folder, path)
