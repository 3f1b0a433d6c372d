"""Training core: tf.distribute equivalence, exact resumption, a real MNIST run, user errors."""
import json
import os
import re

import numpy as np

from models import recipes, training
from tests.conftest import run_binary


def test_one_mirrored_step_equals_one_device_step():
  proc = run_binary('tests.mirrored_step')
  assert proc.returncode == 0, proc.stderr[-3000:]
  match = re.search(r'replicas=2 moved=(\S+) max_diff=(\S+)', proc.stdout)
  assert match, proc.stdout
  moved, diff = float(match.group(1)), float(match.group(2))
  assert moved > 1e-3  # the step really changed the weights
  assert diff < 1e-5


def _weights(run_dir):
  model, _, _ = training.load_trained(run_dir)
  return model.get_weights()


def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, shared_data):
  config = recipes.recipe('fc', width=64, dropout=0.2, batch_size=64, train_steps=40, seed=1)
  kwargs = dict(data_dir=shared_data, checkpoint_every=10, log=lambda *a, **k: None)
  whole = training.train_and_evaluate(config, str(tmp_path / 'whole'), **kwargs)
  partial = training.train_and_evaluate(config, str(tmp_path / 'resumed'), stop_after_steps=25,
                                        **kwargs)
  assert partial == {'steps_trained': 25, 'finished': False}
  resumed = training.train_and_evaluate(config, str(tmp_path / 'resumed'), **kwargs)
  assert resumed['steps_trained'] == whole['steps_trained'] == 40
  for a, b in zip(_weights(str(tmp_path / 'whole')), _weights(str(tmp_path / 'resumed'))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert resumed['metrics']['test']['accuracy'] == whole['metrics']['test']['accuracy']


def test_short_real_mnist_run_exceeds_95_percent(tmp_path, shared_data):
  out = str(tmp_path / 'run')
  proc = run_binary('experiments.train', '--model=fc', '--dataset=mnist', f'--output_dir={out}',
                    '--train_steps=400', '--preprocessing=mnist', f'--data_dir={shared_data}',
                    '--checkpoint_every=200')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'step 400/400' in proc.stdout
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  assert results['steps_trained'] == 400
  assert results['metrics']['test']['accuracy'] > 0.95
  assert set(results['metrics']['test']) >= {'accuracy', 'loss', 'nll', 'ece'}
  with open(os.path.join(out, 'config.json')) as f:
    assert json.load(f)['config']['learning_rate'] == 1.0  # the recipe's, recorded
  assert os.listdir(os.path.join(out, 'tensorboard'))


def _one_line_error(proc):
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr
  return proc.stderr


def test_user_mistakes_get_one_line_errors(tmp_path, shared_data):
  out = str(tmp_path / 'run')
  assert 'value should be one of' in _one_line_error(
      run_binary('experiments.train', '--model=vgg', f'--output_dir={out}'))
  assert '--label_smoothing must be in [0, 1)' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--label_smoothing=1.2', f'--output_dir={out}'))
  assert 'unknown dataset "imagenet"' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--dataset=imagenet', f'--output_dir={out}'))
  assert 'error: --data_dir /nonexistent does not exist' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--data_dir=/nonexistent',
                 f'--output_dir={out}'))
  os.makedirs(out)
  with open(os.path.join(out, 'config.json'), 'w') as f:
    json.dump({'config': training.config_to_json(recipes.recipe('fc'))}, f)
  err = _one_line_error(run_binary('experiments.train', '--model=fc', '--label_smoothing=0.1',
                                   f'--output_dir={out}', f'--data_dir={shared_data}'))
  assert 'holds a different run (differs in label_smoothing)' in err
