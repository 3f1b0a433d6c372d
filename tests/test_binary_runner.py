"""The tests' binary runner: a fork of the zygote behaves as `python -m module` does."""
import json
import os
import subprocess
import sys

import pytest

from tests import binary_runner
from tests.conftest import ROOT, run_binary


def _real(*args, env=None):
  return subprocess.run([sys.executable, '-m', 'tests.runner_probe', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))


@pytest.mark.parametrize('args', [(), ('exit', '3'), ('raise',)])
def test_a_forked_run_sees_and_returns_what_a_real_one_does(args):
  forked = run_binary('tests.runner_probe', *args, env={'PROBE_ENV': 'x'})
  real = _real(*args, env={'PROBE_ENV': 'x'})
  assert forked.returncode == real.returncode == {(): 0, ('exit', '3'): 3, ('raise',): 1}[args]
  assert forked.stdout == real.stdout
  if args == ('raise',):
    assert forked.stderr.splitlines()[-1] == real.stderr.splitlines()[-1] == (
        'RuntimeError: probe failure')
    assert 'Traceback' in forked.stderr
  else:
    seen = json.loads(forked.stdout)
    assert seen == {'argv0': 'runner_probe.py', 'args': list(args), 'cwd': ROOT,
                    'probe_env': 'x', 'name': '__main__'}
    assert forked.stderr.strip().splitlines()[-1] == 'to stderr'


def test_a_run_past_its_timeout_is_killed_and_raises_as_subprocess_does():
  with pytest.raises(subprocess.TimeoutExpired):
    run_binary('tests.runner_probe', 'sleep', '30', timeout=2)
  assert run_binary('tests.runner_probe').returncode == 0  # the zygote serves the next run


def test_import_time_settings_get_a_real_subprocess():
  zygote = binary_runner.Zygote()
  same = dict(os.environ, PYTHONPATH=ROOT)
  assert zygote.forks_for(dict(same, TF_CONFIG='{}'))  # read when a strategy is built
  for name in ('ONEDNN_MAX_CPU_ISA', 'TF_ENABLE_ONEDNN_OPTS'):  # read at import or first use
    assert not zygote.forks_for(dict(same, **{name: same.get(name, '') + '_other'}))
