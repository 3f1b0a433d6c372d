"""Runs `python -m module args` for the tests without paying TensorFlow's import each time.

A binary's process spends 6-12 s of a 2-core machine importing TensorFlow, Keras and the
project before its first line runs, and the suite starts about sixty of them. This runner
starts one Python process (the zygote) that imports all of that once, without running a single
TensorFlow op, and then forks a fresh child per binary: the child runs the module as
`python -m` would (`runpy`, `__main__`, its own argv, environment, working directory,
stdout and stderr), so every run still starts from a process that has executed nothing of the
binary. TensorFlow's runtime (thread pools, devices, oneDNN) starts inside each child, after
the fork; the zygote checks before every fork that it runs no more OS threads than its
imports left (BLAS's idle workers, which fork safely).

Environment variables that TensorFlow reads at import time cannot change in a child; a run
asking for a different value of one of them (see `_IMPORT_TIME`) gets a real subprocess.
"""
import atexit
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Read when TensorFlow or oneDNN is imported or first used in a process that forked from the
# zygote: a run that changes one of them is a real subprocess.
_IMPORT_TIME = ('TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS', 'ONEDNN_MAX_CPU_ISA',
                'DNNL_MAX_CPU_ISA', 'TF_ENABLE_MKL_NATIVE_FORMAT', 'CUDA_VISIBLE_DEVICES',
                'OMP_NUM_THREADS', 'TF_NUM_INTEROP_THREADS', 'TF_NUM_INTRAOP_THREADS',
                'PYTHONHASHSEED', 'MPLBACKEND')
# What the zygote imports: everything a binary imports before its main() runs, and no more.
_PRELOAD = ('numpy', 'scipy.stats', 'matplotlib', 'matplotlib.pyplot', 'absl.app', 'tensorflow',
            'keras', 'tensorflow_datasets', 'tensorflow_text', 'sacrebleu', 'sentencepiece',
            'data', 'calibration', 'models', 'models.classifier', 'distillation', 'visualization')
# Not preloaded: experiments.* (experiments.common takes the provenance's start time at import).


def _os_threads():
  return len(os.listdir('/proc/self/task'))


def _child(request, out_path, err_path):
  """In the forked child: becomes `python -m module args` and never returns."""
  code = 1
  try:
    os.setsid()  # its own process group, so a timeout kills whatever it started too
    for fd, path in ((1, out_path), (2, err_path)):
      os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.environ.clear()
    os.environ.update(request['env'])
    os.chdir(request['cwd'])
    sys.path[0] = request['cwd']
    sys.argv = [request['module'], *request['args']]
    try:
      runpy.run_module(request['module'], run_name='__main__', alter_sys=True)
      code = 0
    except SystemExit as e:  # as the interpreter: None is 0, a message is printed and 1
      if e.code is None or isinstance(e.code, int):
        code = e.code or 0
      else:
        print(e.code, file=sys.stderr)
        code = 1
    except BaseException:  # pylint: disable=broad-except  (as the interpreter would print it)
      traceback.print_exc()
      code = 1
    threading._shutdown()  # pylint: disable=protected-access  (waits as an interpreter's exit)
    atexit._run_exitfuncs()  # pylint: disable=protected-access
  finally:
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except Exception:  # pylint: disable=broad-except
        pass
    os._exit(code)  # pylint: disable=protected-access


def _scratch_file():
  fd, path = tempfile.mkstemp(prefix='binary_runner_')
  os.close(fd)
  return path


def _wait(pid, timeout):
  """The child's exit status, or None after killing its process group at the timeout."""
  deadline = time.monotonic() + timeout
  while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
      return os.waitstatus_to_exitcode(status)
    if time.monotonic() > deadline:
      os.killpg(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
      return None
    time.sleep(0.02)


def serve():
  """The zygote: imports once, then answers one JSON request per line with a forked run."""
  protocol = os.fdopen(os.dup(1), 'w')
  os.dup2(2, 1)  # whatever an import prints must not reach the protocol
  for name in _PRELOAD:
    __import__(name)
  imported = _os_threads()  # the main thread and BLAS's idle workers (they fork safely)
  protocol.write(json.dumps({'ready': True, 'threads': imported}) + '\n')
  protocol.flush()
  for line in sys.stdin:
    request = json.loads(line)
    threads = _os_threads()
    if threads > imported:  # a runtime started in the zygote: a fork would copy its locks
      protocol.write(json.dumps({'error': f'the zygote runs {threads} OS threads, more than '
                                          f'its imports left ({imported})'}) + '\n')
      protocol.flush()
      continue
    out_path, err_path = _scratch_file(), _scratch_file()
    pid = os.fork()
    if pid == 0:
      _child(request, out_path, err_path)
    returncode = _wait(pid, request['timeout'])
    reply = {'returncode': returncode}
    for key, path in (('stdout', out_path), ('stderr', err_path)):
      with open(path, errors='replace') as f:
        reply[key] = f.read()
      os.unlink(path)
    protocol.write(json.dumps(reply) + '\n')
    protocol.flush()


class Zygote:
  """The test side: starts the zygote on first use and sends it runs."""

  def __init__(self):
    self.proc, self.env, self.log = None, None, None

  def _start(self):
    self.env = dict(os.environ, PYTHONPATH=ROOT)
    self.log = tempfile.TemporaryFile()
    self.proc = subprocess.Popen([sys.executable, '-m', 'tests.binary_runner'], cwd=ROOT,
                                 env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=self.log, text=True)
    ready = self.proc.stdout.readline()
    if not ready:
      self.log.seek(0)
      raise RuntimeError('the binary runner did not start:\n' +
                         self.log.read().decode(errors='replace')[-3000:])

  def forks_for(self, env):
    """True when a run with `env` can be a fork of the zygote (same import-time settings)."""
    current = self.env or dict(os.environ, PYTHONPATH=ROOT)
    return all(env.get(k) == current.get(k) for k in _IMPORT_TIME)

  def run(self, module, args, env, timeout):
    if self.proc is None or self.proc.poll() is not None:
      self._start()
    self.proc.stdin.write(json.dumps({'module': module, 'args': list(args), 'env': env,
                                      'cwd': ROOT, 'timeout': timeout}) + '\n')
    self.proc.stdin.flush()
    reply = json.loads(self.proc.stdout.readline())
    command = [sys.executable, '-m', module, *args]
    if 'error' in reply:
      raise RuntimeError(reply['error'])
    if reply['returncode'] is None:
      raise subprocess.TimeoutExpired(command, timeout, reply['stdout'], reply['stderr'])
    return subprocess.CompletedProcess(command, reply['returncode'], reply['stdout'],
                                       reply['stderr'])

  def close(self):
    if self.proc is not None and self.proc.poll() is None:
      self.proc.stdin.close()
      self.proc.wait(timeout=30)


if __name__ == '__main__':
  serve()
