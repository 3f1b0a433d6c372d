"""Preemption and Ctrl-C (issue 33): SIGTERM or Ctrl-C during training saves a checkpoint at the
next step the callbacks see and ends with one line; rerunning the same command resumes to the
weights of an uninterrupted run. One worker's SIGTERM stops every worker of a multi-worker job
at one step; a signal outside training is one line too. And --jit_compile under a strategy is
refused in one line."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import keras
import numpy as np
import pytest

from models import classifier, recipes, trainer
from tests.conftest import ROOT, SHARED_DATA, run_binary

STEPS, CHUNK = 1000, 100
FLAGS = ['--model=fc', '--dataset=mnist', '--width=32', '--batch_size=64',
         f'--train_steps={STEPS}', '--preprocessing=mnist', f'--checkpoint_every={CHUNK}',
         f'--data_dir={SHARED_DATA}']
STOPPED = re.compile(r'stopped by (SIGTERM|Ctrl-C \(SIGINT\)) at step (\d+) of (\d+), with a '
                     r'checkpoint there \((.+)\); rerun the same command to resume from step '
                     r'\2\.')


def _weights(run_dir):
  return classifier.load_trained(str(run_dir))[0].get_weights()


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  out = tmp_path_factory.mktemp('whole') / 'run'
  proc = run_binary('experiments.train', *FLAGS, f'--output_dir={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, proc.stdout


def _as_from_a_terminal():
  """Ctrl-C reaches a command started from a terminal; pytest started in the background (`&`)
  passes its children SIGINT ignored, which the binary would rightly leave ignored."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_first_checkpoint(out, signum):
  """Starts the binary as a real process, sends `signum` just after it reports its first
  checkpoint and returns (exit status, stdout, stderr)."""
  with tempfile.TemporaryFile('w+') as stderr:
    proc = subprocess.Popen([sys.executable, '-m', 'experiments.train', *FLAGS,
                             f'--output_dir={out}'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                            preexec_fn=_as_from_a_terminal)
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
      lines = []
      for line in proc.stdout:
        lines.append(line)
        if line.startswith(f'step {CHUNK}/'):
          time.sleep(0.2)  # most likely into the next chunk (at once, it may stop right there)
          proc.send_signal(signum)
          break
      lines.append(proc.stdout.read())
      code = proc.wait()
    finally:
      watchdog.cancel()
      proc.kill()
    stderr.seek(0)
    return code, ''.join(lines), stderr.read()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_where_training_stopped_and_the_rerun_matches_the_whole_run(
    tmp_path, uninterrupted, signum):
  out = tmp_path / 'run'
  code, stdout, stderr = _interrupt_after_first_checkpoint(out, signum)
  assert f'step {CHUNK}/' in stdout, (stdout[-2000:], stderr[-3000:])
  assert code == 128 + signum, (stdout[-2000:], stderr[-3000:])
  assert 'Traceback' not in stderr, stderr[-3000:]
  match = STOPPED.fullmatch(stderr.strip().splitlines()[-1])
  assert match, stderr[-2000:]
  step = int(match.group(2))
  assert int(match.group(3)) == STEPS
  assert CHUNK <= step < STEPS and step % 10 == 0  # the next steps_per_execution boundary
  assert match.group(4) == str(out / 'checkpoints')
  assert os.path.exists(out / 'checkpoints' / f'ckpt-{step}.index')

  rerun = run_binary('experiments.train', *FLAGS, f'--output_dir={out}')
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f'starting at step {step}' in rerun.stdout
  logged = [int(s) for s in re.findall(r'^step (\d+)/', rerun.stdout, re.M)]
  assert logged and all(s % CHUNK == 0 for s in logged)  # on the checkpoint grid at once
  whole, whole_stdout = uninterrupted
  for a, b in zip(_weights(whole), _weights(out)):
    np.testing.assert_array_equal(a, b)
  test_line = lambda text: re.findall(r'"test": \{[^}]*\}', text)
  assert test_line(rerun.stdout) == test_line(whole_stdout)


class _SignalAt(keras.callbacks.Callback):
  """Sends this process a real SIGTERM when training reaches `step`."""

  def __init__(self, step):
    super().__init__()
    self.step = step

  def on_train_batch_end(self, batch, logs=None):
    if int(self.model.optimizer.iterations.numpy()) == self.step:
      os.kill(os.getpid(), signal.SIGTERM)


SMALL = dict(width=32, batch_size=64, train_steps=120, preprocessing='mnist', validation_size=500,
             select_by_validation=True, seed=3)
# Ten steps a call into the compiled step, checkpoints (and validation scores) every 40.
SMALL_OPTIONS = dict(checkpoint_every=40, steps_per_execution=10)


def _train_small(out, lines, callbacks=None):
  return classifier.train_and_evaluate(
      recipes.recipe('fc', **SMALL), out, data_dir=SHARED_DATA, callbacks=callbacks,
      options=trainer.RunOptions(log=lambda line, **k: lines.append(line), **SMALL_OPTIONS))


def _scored_steps(lines):
  return [int(line.split(' at step ')[1].split(' ')[0]) for line in lines
          if line.startswith('validation accuracy')]


@pytest.fixture(scope='module')
def small_whole(tmp_path_factory):
  out, lines = str(tmp_path_factory.mktemp('small') / 'whole'), []
  results = _train_small(out, lines)
  assert _scored_steps(lines) == [40, 80, 120]
  return out, results


@pytest.mark.parametrize('at', [70, 80])  # between checkpoints, and on one
def test_sigterm_stops_at_that_step_and_resumes_exactly(tmp_path, small_whole, at):
  """The stopped and resumed run scores the validation split (select_by_validation) at the
  same steps as the whole run: not at the stop, and not skipping a checkpoint it stops on."""
  out, lines = str(tmp_path / 'run'), []
  with pytest.raises(trainer.Stopped) as stopped:
    _train_small(out, lines, callbacks=lambda chief: [_SignalAt(at)])
  assert str(stopped.value) == (
      f'stopped by SIGTERM at step {at} of 120, with a checkpoint there ({out}/checkpoints); '
      f'rerun the same command to resume from step {at}.')
  assert stopped.value.exit_code == 143
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the caller's handler is back
  assert _checkpoint_steps(out) == [40, at]
  resumed = _train_small(out, lines)
  assert _scored_steps(lines) == [40, 80, 120]
  whole, whole_results = small_whole
  assert resumed['kept_weights'] == whole_results['kept_weights']
  assert resumed['metrics'] == whole_results['metrics']
  for a, b in zip(_weights(whole), _weights(out)):
    np.testing.assert_array_equal(a, b)


def _checkpoint_steps(run_dir):
  names = os.listdir(os.path.join(run_dir, 'checkpoints'))
  return sorted(int(n[5:-6]) for n in names if re.fullmatch(r'ckpt-\d+\.index', n))


@pytest.mark.parametrize('strategy', ['mirrored', 'tpu'])
def test_jit_compile_is_refused_under_a_strategy_in_one_line(tmp_path, strategy):
  proc = run_binary('experiments.train', *FLAGS, f'--output_dir={tmp_path / "run"}',
                    f'--strategy={strategy}', '--jit_compile')
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert (f'--jit_compile does not apply under --strategy={strategy}: '
          in proc.stderr.splitlines()[-2])
  assert 'drop --jit_compile' in proc.stderr
  assert not os.path.exists(tmp_path / 'run')  # refused before anything started


MULTI_WORKER_FLAGS = ['--model=fc', '--dataset=mnist', '--width=32', '--batch_size=64',
                      '--train_steps=300', '--preprocessing=mnist', '--checkpoint_every=100',
                      f'--data_dir={SHARED_DATA}']


def _start_workers(args):
  """Worker 0 (the chief) and worker 1 of a MultiWorkerMirroredStrategy job on localhost."""
  ports = []
  for _ in range(2):
    with socket.socket() as s:
      s.bind(('localhost', 0))
      ports.append(s.getsockname()[1])
  cluster = {'worker': [f'localhost:{p}' for p in ports]}
  return [subprocess.Popen(
      [sys.executable, '-m', 'experiments.train', *args, '--strategy=multi_worker'], cwd=ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, PYTHONPATH=ROOT, TF_CONFIG=json.dumps(
          {'cluster': cluster, 'task': {'type': 'worker', 'index': index}})))
          for index in range(2)]


# TensorFlow's native log lines ("E0000 00:00:1796281312.622327   29053 file.cc:252] ...").
NATIVE_LOG = re.compile(r'[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] ')


def _stop_match(output):
  """The stop line, which must be the last line our code printed: a worker whose coordination
  leader (the chief) exited first may still get a native log from TensorFlow's heartbeat
  thread, with continuation lines, after it (seen once in CI)."""
  lines = output.strip().splitlines()
  stops = [i for i, line in enumerate(lines) if STOPPED.fullmatch(line)]
  if not stops:
    return None
  after = lines[stops[-1] + 1:]
  assert not after or NATIVE_LOG.match(after[0]), output[-3000:]
  return STOPPED.fullmatch(lines[stops[-1]])


def _finish(procs, timeout=300):
  try:
    return [(proc.wait(timeout=timeout), proc.stdout.read()) for proc in procs]
  finally:
    for proc in procs:
      proc.kill()


@pytest.mark.slow(25)
def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_rerun_resumes(tmp_path):
  """A preempted VM signals its own worker only; a multi-worker save is collective, so both
  workers must save at the same step (they agree by an all-reduce each step)."""
  out = tmp_path / 'run'
  args = [*MULTI_WORKER_FLAGS, f'--output_dir={out}']
  chief, worker = procs = _start_workers(args)
  head = []
  for line in chief.stdout:
    head.append(line)
    if line.startswith('step 100/'):
      time.sleep(0.2)
      worker.send_signal(signal.SIGTERM)
      break
  stopped = _finish(procs)
  steps = set()
  for code, output in stopped:
    assert code == 143, (''.join(head) + output)[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    match = _stop_match(output)
    assert match and match.group(1) == 'SIGTERM', output[-3000:]
    steps.add(int(match.group(2)))
  assert len(steps) == 1 and 100 <= min(steps) < 300, steps
  step = steps.pop()
  assert os.path.exists(out / 'checkpoints' / f'ckpt-{step}.index')

  for code, output in _finish(_start_workers(args)):
    assert code == 0, output[-3000:]
    assert f'starting at step {step}' in output
  single = tmp_path / 'single'
  proc = run_binary('experiments.train', *MULTI_WORKER_FLAGS, f'--output_dir={single}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  for a, b in zip(_weights(single), _weights(out)):  # as tests/test_multi_worker.py compares
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize('name, signum', [('sigterm', signal.SIGTERM), ('sigint', signal.SIGINT)])
def test_a_signal_outside_training_ends_the_binary_with_one_line(name, signum):
  proc = run_binary('tests.stop_probe', name)
  assert proc.returncode == 128 + signum, proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1].endswith(
      'outside training (finished work is kept); rerun the same command to resume from the '
      'last checkpoint.')
