"""One writer per run directory: a lock file with an owner and a heartbeat, through gfile.

Two copies of one command (a scheduler relaunching a job whose first copy still runs, a command
pasted twice) would otherwise train and write the same checkpoints unnoticed. gs:// has no
flock, so the lock is a file, `run.lock` ({host, pid, since, heartbeat}), rewritten by a
background thread every `heartbeat_seconds`. A lock is stale, and taken over, when its holder
is a process of this host that no longer exists (a kill -9 never blocks the rerun that resumes
it) or when its heartbeat is older than `stale_seconds` (a holder on another host that died).
Under a multi-worker strategy only the chief takes it.
"""
import contextlib
import datetime
import os
import socket
import threading
import time
import uuid

from data.run_directory import run_files

LOCK = 'run.lock'


def _alive_here(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by another user
    return True
  return True


class RunLock:
  """Held while a process trains into `run_dir`; `with RunLock(run_dir):` or acquire/release."""

  def __init__(self, run_dir, heartbeat_seconds=30.0, stale_seconds=180.0, log=print):
    self.path = os.path.join(run_dir, LOCK)
    self.heartbeat_seconds, self.stale_seconds, self.log = heartbeat_seconds, stale_seconds, log
    self.owner = {'host': socket.gethostname(), 'pid': os.getpid(),
                  'since': datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec='seconds'),
                  'token': uuid.uuid4().hex}
    self._stop = threading.Event()
    self._thread = None

  def _read(self):
    """The holder's record; None when there is none or it does not parse (nobody holds it)."""
    if not run_files.gfile.exists(self.path):
      return None
    try:
      return run_files.read_json(self.path)
    except run_files.RunDirError:
      return None

  def _stale(self, holder):
    if holder is None:
      return True
    if holder.get('host') == self.owner['host'] and not _alive_here(int(holder.get('pid', -1))):
      return True
    return time.time() - float(holder.get('heartbeat', 0)) > self.stale_seconds

  def _write(self):
    run_files.write_json(self.path, dict(self.owner, heartbeat=time.time()))

  def acquire(self):
    """Takes the lock, or raises RunDirError naming the live holder and the fix."""
    holder = self._read()
    if holder is not None and holder.get('token') != self.owner['token']:
      if not self._stale(holder):
        age = time.time() - float(holder['heartbeat'])
        raise run_files.RunDirError(
            f'{os.path.dirname(self.path)} is in use by process {holder["pid"]} on '
            f'{holder["host"]} since {holder["since"]} (heartbeat {age:.0f} s ago). Fix: wait '
            f'for that command to end or stop it, then rerun; if it is gone, its lock lapses '
            f'{self.stale_seconds:.0f} s after its last heartbeat, or delete {self.path}.')
      self.log(f'note: taking over the lock of process {holder["pid"]} on {holder["host"]} '
               f'(gone); resuming its run.', flush=True)
    self._write()
    if (self._read() or {}).get('token') != self.owner['token']:  # lost a simultaneous start
      raise run_files.RunDirError(f'{os.path.dirname(self.path)} was claimed by another process '
                                  'at the same moment; rerun to see which.')
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._thread.start()
    return self

  def _beat(self):
    while not self._stop.wait(self.heartbeat_seconds):
      try:
        self._write()
      except run_files.RunDirError:
        pass  # a full disk or a lost bucket ends the run elsewhere; the lock then lapses

  def release(self):
    self._stop.set()
    if self._thread:
      self._thread.join()
    if (self._read() or {}).get('token') == self.owner['token']:
      run_files.gfile.remove(self.path)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def hold(run_dir, chief=True, log=print):
  """RunLock(run_dir) for the chief; nothing for the other workers of a multi-worker job."""
  return RunLock(run_dir, log=log) if chief else contextlib.nullcontext()
