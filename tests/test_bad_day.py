"""A bad day loses nothing: torn checkpoints, unreadable run files, a full disk, two processes on
one run directory. Every failure is one line naming the file, what is wrong and the fix."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from data import translation
from data.run_directory import run_files, run_lock
from distillation import mi_record
from models import classifier, recipes, run_records, trainer, translation_eval
from tests.conftest import ROOT, run_binary, SHARED_DATA

TINY = dict(width=32, batch_size=64, train_steps=40, preprocessing='mnist')
TINY_FLAGS = ['--model=fc', '--dataset=mnist', '--width=32', '--batch_size=64',
              '--train_steps=40', '--preprocessing=mnist', '--checkpoint_every=10',
              f'--data_dir={SHARED_DATA}']


def _train(run_dir, log=None, **options):
  return classifier.train_and_evaluate(
      recipes.recipe('fc', **TINY), str(run_dir), data_dir=SHARED_DATA,
      options=trainer.RunOptions(checkpoint_every=10, log=log or (lambda *a, **k: None),
                                 **options))


def _weights(run_dir):
  model, _, _ = classifier.load_trained(str(run_dir))
  return model.get_weights()


def _one_error_line(proc):
  """The binary failed with exactly one line on stderr's tail, and no traceback."""
  assert proc.returncode == 1, (proc.stdout[-2000:], proc.stderr[-2000:])
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), proc.stderr[-2000:]
  return last


def _tear(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.fixture(scope='module')
def finished_tiny_run(tmp_path_factory):
  """One finished tiny run (40 steps, checkpoints at 30 and 40 kept), copied by the tests that
  damage it."""
  run_dir = tmp_path_factory.mktemp('finished') / 'run'
  _train(run_dir)
  return run_dir


@pytest.mark.parametrize('torn', ['data', 'index'])
def test_a_torn_latest_checkpoint_falls_back_to_the_one_before_and_reproduces_the_run(
    tmp_path, finished_tiny_run, torn):
  _train(tmp_path / 'run', stop_after_steps=30)
  _tear(glob.glob(str(tmp_path / 'run' / 'checkpoints' / f'ckpt-30.{torn}*'))[0])
  lines = []
  results = _train(tmp_path / 'run', log=lambda line, **k: lines.append(line))
  warnings = [line for line in lines if line.startswith('warning:')]
  assert len(warnings) == 1 and 'ckpt-30' in warnings[0], lines
  assert 'resuming from ckpt-20 (step 20)' in warnings[0]
  assert 'starting at step 20' in ' '.join(lines)
  assert results['steps_trained'] == 40
  for a, b in zip(_weights(tmp_path / 'run'), _weights(finished_tiny_run)):
    np.testing.assert_array_equal(a, b)


def test_no_checkpoint_that_reads_back_is_one_line_naming_the_folder(tmp_path):
  out = tmp_path / 'run'
  proc = run_binary('experiments.train', *TINY_FLAGS, f'--output_dir={out}',
                    '--stop_after_steps=20')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for data_file in glob.glob(str(out / 'checkpoints' / 'ckpt-*.data*')):
    _tear(data_file)
  line = _one_error_line(run_binary('experiments.train', *TINY_FLAGS, f'--output_dir={out}'))
  assert 'no checkpoint in' in line and str(out / 'checkpoints') in line
  assert f'delete {out / "checkpoints"}' in line


def test_a_corrupt_logits_file_is_recomputed_from_the_weights(tmp_path, finished_tiny_run):
  run_dir = tmp_path / 'run'
  shutil.copytree(finished_tiny_run, run_dir)
  want = run_files.read_npz(str(run_dir / 'logits.npz'))
  (run_dir / 'logits.npz').write_bytes(b'PK\x03\x04 not a zip archive')
  proc = run_binary('experiments.calibration', f'--run_dirs={run_dir}',
                    f'--output_dir={tmp_path / "calibration"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'note: {run_dir / "logits.npz"} does not read back' in proc.stdout
  got = run_files.read_npz(str(run_dir / 'logits.npz'))  # rewritten whole
  np.testing.assert_allclose(got['test'], want['test'], rtol=1e-6, atol=1e-6)
  # Without weights (a committed result) it cannot be recomputed: one line, file and fix.
  (run_dir / 'logits.npz').write_bytes(b'garbage')
  os.remove(run_dir / 'model.weights.h5')
  line = _one_error_line(run_binary('experiments.calibration', f'--run_dirs={run_dir}',
                                    f'--output_dir={tmp_path / "calibration2"}'))
  assert f'{run_dir / "logits.npz"} is unreadable' in line and 'Fix:' in line


def _translation_run_files(run_dir):
  """Readers of a translation run's files, each called the way the section calls it."""
  return {
      'translation_eval.json': lambda: run_files.read_json(
          str(run_dir / translation_eval.EVAL)),
      'hypotheses/validation_T1.000.txt': lambda: translation_eval.read_hypotheses(
          str(run_dir / 'hypotheses' / 'validation_T1.000.txt')),
      'hypotheses/decoding.json': lambda: run_files.read_json(
          str(run_dir / 'hypotheses' / 'decoding.json')),
      'vocabulary.model': lambda: translation.Vocabulary(str(run_dir / 'vocabulary.model')),
  }


@pytest.mark.parametrize('name', ['config.json', 'results.json', 'mutual_information.json',
                                  'model.weights.h5', 'translation_eval.json',
                                  'hypotheses/validation_T1.000.txt',
                                  'hypotheses/decoding.json', 'vocabulary.model'])
def test_every_unreadable_run_file_is_one_line_naming_it_and_the_fix(tmp_path,
                                                                     finished_tiny_run, name):
  run_dir = tmp_path / 'run'
  shutil.copytree(finished_tiny_run, run_dir)
  path = run_dir / name
  path.parent.mkdir(exist_ok=True)
  path.write_bytes(b'{\x00\xff cut off')
  readers = {
      'config.json': lambda: run_records.read_run_config(str(run_dir)),
      'results.json': lambda: run_records.finished_results(str(run_dir)),
      'mutual_information.json': lambda: mi_record.load_record(str(run_dir)),
      'model.weights.h5': lambda: classifier.load_trained(str(run_dir)),
      **_translation_run_files(run_dir),
  }
  with pytest.raises(run_files.RunDirError) as error:
    readers[name]()
  message = str(error.value)
  assert '\n' not in message and message.startswith(f'{path} is unreadable (')
  assert 'Fix: ' in message and ('delete' in message or 'restore' in message)


def test_a_corrupt_config_or_section_file_stops_the_binaries_with_one_line(tmp_path,
                                                                          finished_tiny_run):
  run_dir = tmp_path / 'run'
  shutil.copytree(finished_tiny_run, run_dir)
  (run_dir / 'config.json').write_text('{model: fc')  # the parser's words alone say nothing
  line = _one_error_line(run_binary('experiments.train', *TINY_FLAGS, f'--output_dir={run_dir}'))
  assert f'{run_dir / "config.json"} is unreadable (not valid JSON' in line
  assert 'rerun the command that trained this run' in line
  (run_dir / 'config.json').write_text('{"config": {"model": "fc", "no_such_field": 1}}')
  with pytest.raises(run_files.RunDirError, match='config.json is unreadable .not a run config'):
    run_records.read_run_config(str(run_dir))
  results = tmp_path / 'results' / 'section'
  results.mkdir(parents=True)
  (results / 'table.json').write_text('{"rows": [')
  line = _one_error_line(run_binary('experiments.report', f'--results_dir={results.parent}'))
  assert f'{results / "table.json"} is unreadable' in line and 'rerun the section' in line


def _can_mount_tmpfs():
  probe = subprocess.run(['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt'],
                         capture_output=True, check=False) if shutil.which('unshare') else None
  return probe is not None and probe.returncode == 0


FULL_DISK = r'''
set -u
mount -t tmpfs -o size=4m tmpfs "$DISK"
python -m experiments.train $FLAGS --output_dir="$DISK/run" --stop_after_steps=20 \
  > "$OUT/first.log" 2>&1 || exit 10
avail=$(df --output=avail -B1 "$DISK" | tail -1)
head -c $((avail - 60000)) /dev/zero > "$DISK/filler" 2>/dev/null
python -m experiments.train $FLAGS --output_dir="$DISK/run" > "$OUT/full.out" 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
ls "$DISK/run/checkpoints" > "$OUT/left.txt"
rm "$DISK/filler"
python -m experiments.train $FLAGS --output_dir="$DISK/run" > "$OUT/rerun.log" 2>&1 || exit 11
cp "$DISK/run/model.weights.h5" "$OUT/"
'''


@pytest.mark.slow(29)
def test_a_full_disk_is_one_line_and_the_rerun_resumes_from_the_last_good_checkpoint(
    tmp_path, finished_tiny_run):
  """A real full disk: a 4 MB tmpfs in a private mount namespace (unshare), filled to 60 kB
  after the first 20 steps, so the checkpoint of step 30 cannot be written."""
  if not _can_mount_tmpfs():
    pytest.skip('unshare cannot mount a tmpfs here (needs user and mount namespaces)')
  disk, out = tmp_path / 'disk', tmp_path / 'out'
  disk.mkdir()
  out.mkdir()
  env = dict(os.environ, PYTHONPATH=ROOT, DISK=str(disk), OUT=str(out),
             FLAGS=' '.join(TINY_FLAGS))
  proc = subprocess.run(['unshare', '-rm', 'bash', '-c', FULL_DISK], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:],
                                *(p.read_text()[-2000:] for p in out.glob('*.log')))
  assert (out / 'full.rc').read_text().strip() == '1'
  err = (out / 'full.err').read_text()
  assert 'Traceback' not in err
  assert err.strip().splitlines()[-1] == (
      f'error: no space left on the device while writing checkpoint ckpt-30 under '
      f'{disk}/run/checkpoints; free space and rerun the same command: it resumes from step '
      f'20.')
  assert {'ckpt-10.index', 'ckpt-20.index'} <= set((out / 'left.txt').read_text().split())
  assert 'starting at step 20' in (out / 'rerun.log').read_text()
  model = classifier.build_for(recipes.recipe('fc', **TINY))
  model.load_weights(str(out / 'model.weights.h5'))
  for a, b in zip(model.get_weights(), _weights(finished_tiny_run)):
    np.testing.assert_array_equal(a, b)


def _write_lock(run_dir, pid, host=None, heartbeat_age=0.0):
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, run_lock.LOCK), 'w') as f:
    json.dump({'host': host or socket.gethostname(), 'pid': pid, 'since': '2026-01-01T00:00:00',
               'heartbeat': time.time() - heartbeat_age, 'token': 'other'}, f)


def test_a_second_copy_of_a_running_command_refuses_at_once_and_a_killed_one_never_blocks(
    tmp_path):
  out = tmp_path / 'run'
  first = subprocess.Popen(
      [sys.executable, '-m', 'experiments.train', *TINY_FLAGS[:4], '--train_steps=1000000',
       *TINY_FLAGS[5:], f'--output_dir={out}'], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while not glob.glob(str(out / 'checkpoints' / 'ckpt-*.index')):
      assert time.time() < deadline and first.poll() is None, 'the first copy did not start'
      time.sleep(0.5)
    second = run_binary('experiments.train', *TINY_FLAGS[:4], '--train_steps=1000000',
                        *TINY_FLAGS[5:], f'--output_dir={out}', timeout=180)
    line = _one_error_line(second)
    assert f'is in use by process {first.pid} on {socket.gethostname()} since ' in line
    assert 'Fix: wait for that command to end or stop it' in line
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  assert os.path.exists(out / run_lock.LOCK)  # kill -9 leaves it behind
  last = max(int(p.split('ckpt-')[1].split('.')[0])
             for p in glob.glob(str(out / 'checkpoints' / 'ckpt-*.index')))
  rerun = run_binary('experiments.train', *TINY_FLAGS[:4], '--train_steps=1000000',
                     *TINY_FLAGS[5:], f'--output_dir={out}', f'--stop_after_steps={last + 10}')
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert f'taking over the lock of process {first.pid}' in rerun.stdout
  assert not os.path.exists(out / run_lock.LOCK)  # released at the end


def test_the_lock_lapses_by_heartbeat_for_other_hosts_and_only_the_chief_takes_it(tmp_path):
  live = subprocess.Popen(['sleep', '60'])
  try:
    _write_lock(tmp_path / 'mine', live.pid)
    with pytest.raises(run_files.RunDirError, match=f'in use by process {live.pid}'):
      run_lock.RunLock(str(tmp_path / 'mine')).acquire()
  finally:
    live.kill()
    live.wait()
  with run_lock.RunLock(str(tmp_path / 'mine'), log=lambda *a, **k: None):  # its holder died
    assert json.loads((tmp_path / 'mine' / run_lock.LOCK).read_text())['pid'] == os.getpid()
  _write_lock(tmp_path / 'fresh', 1, host='another-host', heartbeat_age=10)
  with pytest.raises(run_files.RunDirError, match='on another-host since'):
    run_lock.RunLock(str(tmp_path / 'fresh'), stale_seconds=180).acquire()
  _write_lock(tmp_path / 'stale', 1, host='another-host', heartbeat_age=200)
  run_lock.RunLock(str(tmp_path / 'stale'), stale_seconds=180, log=lambda *a, **k: None
                   ).acquire().release()
  assert not os.path.exists(tmp_path / 'stale' / run_lock.LOCK)
  with run_lock.hold(str(tmp_path / 'worker'), chief=False):
    assert not os.path.exists(tmp_path / 'worker' / run_lock.LOCK)


def test_the_heartbeat_keeps_a_long_run_locked(tmp_path):
  lock = run_lock.RunLock(str(tmp_path), heartbeat_seconds=0.2, stale_seconds=1.0)
  with lock:
    first = json.loads((tmp_path / run_lock.LOCK).read_text())['heartbeat']
    time.sleep(1.5)  # longer than stale_seconds: only the heartbeat keeps it held
    with pytest.raises(run_files.RunDirError, match='in use by process'):
      run_lock.RunLock(str(tmp_path), stale_seconds=1.0).acquire()
    assert json.loads((tmp_path / run_lock.LOCK).read_text())['heartbeat'] > first
