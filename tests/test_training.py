"""Training core: tf.distribute equivalence, exact resumption, a real MNIST run, user errors."""
import gc
import json
import os
import re
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from data.run_directory import run_files
from models import classifier, recipes, run_records, trainer
from tests.conftest import ROOT, run_binary


def test_one_mirrored_step_equals_one_device_step():
  proc = run_binary('tests.mirrored_step')
  assert proc.returncode == 0, proc.stderr[-3000:]
  match = re.search(r'replicas=2 moved=(\S+) max_diff=(\S+)', proc.stdout)
  assert match, proc.stdout
  moved, diff = float(match.group(1)), float(match.group(2))
  assert moved > 1e-3  # the step really changed the weights
  assert diff < 1e-5


def test_the_weight_average_on_mirrored_replicas_is_tfs():
  """6 steps of a batch-normalized network with the weight average on 2 replicas against TF's
  formula in float64 (tests/test_imagenet.py has the single-device test)."""
  proc = run_binary('tests.mirrored_step', 'average')
  assert proc.returncode == 0, proc.stderr[-3000:]
  match = re.search(r'replicas=2 moved=(\S+) max_diff=(\S+) swapped_back=True', proc.stdout)
  assert match, proc.stdout
  assert float(match.group(1)) > 1e-2 and float(match.group(2)) < 1e-6


def test_predict_logits_on_mirrored_replicas_keeps_the_order():
  """21 examples in batches of 8, 7 and 32 split over 2 replicas: the logits of one call."""
  proc = run_binary('tests.mirrored_step', 'predict')
  assert proc.returncode == 0, proc.stderr[-3000:]
  match = re.search(r'replicas=2 max_diff=(\S+)', proc.stdout)
  assert match, proc.stdout
  assert float(match.group(1)) < 1e-5


def _weights(run_dir):
  model, _, _ = classifier.load_trained(run_dir)
  return model.get_weights()


def _train(config, run_dir, data_dir, callbacks=None, **options):
  """classifier.train_and_evaluate, quiet, with these RunOptions."""
  return classifier.train_and_evaluate(
      config, run_dir, data_dir=data_dir, callbacks=callbacks,
      options=trainer.RunOptions(log=lambda *a, **k: None, **options))


def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, shared_data):
  config = recipes.recipe('fc', width=64, dropout=0.2, batch_size=64, train_steps=40, seed=1)
  whole = _train(config, str(tmp_path / 'whole'), shared_data, checkpoint_every=10)
  partial = _train(config, str(tmp_path / 'resumed'), shared_data, checkpoint_every=10,
                   stop_after_steps=25)
  assert partial == {'steps_trained': 25, 'finished': False}
  resumed = _train(config, str(tmp_path / 'resumed'), shared_data, checkpoint_every=10)
  assert resumed['steps_trained'] == whole['steps_trained'] == 40
  for a, b in zip(_weights(str(tmp_path / 'whole')), _weights(str(tmp_path / 'resumed'))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert resumed['metrics']['test']['accuracy'] == whole['metrics']['test']['accuracy']


def test_steps_per_execution_trains_the_same_weights_and_resumes(tmp_path, shared_data):
  config = recipes.recipe('fc', width=64, dropout=0.2, batch_size=64, train_steps=40, seed=1)
  whole = _train(config, str(tmp_path / 'whole'), shared_data, checkpoint_every=10)
  out = str(tmp_path / 'five')
  partial = _train(config, out, shared_data, checkpoint_every=10, stop_after_steps=20,
                   steps_per_execution=5)
  assert partial == {'steps_trained': 20, 'finished': False}
  assert sorted(os.listdir(os.path.join(out, 'checkpoints')))[-1].startswith('ckpt-20')
  resumed = _train(config, out, shared_data, checkpoint_every=10, steps_per_execution=5)
  assert resumed['steps_trained'] == 40
  for a, b in zip(_weights(str(tmp_path / 'whole')), _weights(out)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert resumed['metrics']['test']['accuracy'] == whole['metrics']['test']['accuracy']
  with pytest.raises(ValueError, match=r'--checkpoint_every \(10\) is not a multiple of '
                                       r'--steps_per_execution \(3\)'):
    _train(config, str(tmp_path / 'three'), shared_data, checkpoint_every=10,
           steps_per_execution=3)


def test_auto_steps_per_execution_divides_every_period(tmp_path, shared_data, monkeypatch):
  assert trainer.resolve_steps_per_execution(0, [1000, 30000, 0]) == 10
  assert trainer.resolve_steps_per_execution(0, [10, 25, 0]) == 5
  assert trainer.resolve_steps_per_execution(0, [10, 40, 20, 4]) == 2
  assert trainer.resolve_steps_per_execution(3, [10, 40]) == 3  # given: kept (then checked)
  # A short run takes one step a call (a second trace would cost more than it saves)...
  assert trainer.resolve_steps_per_execution(0, [1000, 30000, 0], steps_left=999) == 1
  assert trainer.resolve_steps_per_execution(0, [1000, 30000, 0], steps_left=1000) == 10
  assert trainer.resolve_steps_per_execution(4, [1000, 30000, 0], steps_left=10) == 4
  # ...so the real run below, of 20 steps, shows the divisor rule with that floor lowered.
  monkeypatch.setattr(trainer, 'AUTO_MIN_STEPS', 0)
  seen = []

  class EveryFourSteps(keras.callbacks.Callback):
    every = 4

    def on_train_batch_end(self, batch, logs=None):
      seen.append(int(self.model.optimizer.iterations.numpy()))

  config = recipes.recipe('fc', width=32, batch_size=32, train_steps=20, preprocessing='mnist')
  _train(config, str(tmp_path / 'run'), shared_data, checkpoint_every=10,
         callbacks=lambda chief: [EveryFourSteps()])
  assert seen == list(range(2, 21, 2))  # two steps a call: 2 divides 10, 20 and 4


def test_short_real_mnist_run_exceeds_90_percent(tmp_path, shared_data):
  """400 steps of the 2x1200 recipe on real MNIST must learn: test accuracy above 90%.

  Measured on an AMD EPYC Zen 5: 95.55% with the default oneDNN kernels, 95.56% with
  ONEDNN_MAX_CPU_ISA=AVX2; the floor leaves 5.5 points of margin (the earlier floor of 95% left
  0.55) and stays far above chance (10%) and a broken pipeline.
  """
  out = str(tmp_path / 'run')
  proc = run_binary('experiments.train', '--model=fc', '--dataset=mnist', f'--output_dir={out}',
                    '--train_steps=400', '--preprocessing=mnist', f'--data_dir={shared_data}',
                    '--checkpoint_every=200')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'step 400/400' in proc.stdout
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  assert results['steps_trained'] == 400
  assert results['metrics']['test']['accuracy'] > 0.90
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
  assert 'error: label_smoothing must be in [0, 1), got 1.2.' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--label_smoothing=1.2', f'--output_dir={out}'))
  datasets = 'mnist|fashion_mnist|emnist|cifar10|cifar100|imagenet2012'
  assert f'should be one of <{datasets}>' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--dataset=imagenet', f'--output_dir={out}'))
  assert 'error: --data_dir /nonexistent does not exist' in _one_line_error(
      run_binary('experiments.train', '--model=fc', '--data_dir=/nonexistent',
                 f'--output_dir={out}'))
  os.makedirs(out)
  with open(os.path.join(out, 'config.json'), 'w') as f:
    json.dump({'config': run_records.config_to_json(recipes.recipe('fc'))}, f)
  err = _one_line_error(run_binary('experiments.train', '--model=fc', '--label_smoothing=0.1',
                                   f'--output_dir={out}', f'--data_dir={shared_data}'))
  assert 'holds a different run (differs in label_smoothing)' in err


class _PoisonedTask(classifier.ClassifierTask):
  """The classifier task, but from step 7 on the logits are NaN.

  Images become NaN and the trained model adds 0 * sum(image) to the logits (a ReLU network
  alone would turn NaN inputs into zeros).
  """
  FROM_STEP = 7

  def train_dataset(self, start_step):
    steps = tf.data.Dataset.range(start_step, 1 << 40)
    return tf.data.Dataset.zip(steps, super().train_dataset(start_step)).map(
        lambda s, xy: (tf.where(s >= self.FROM_STEP, np.nan, xy[0]), xy[1]))

  def trained_model(self, model):
    x = keras.Input(model.input_shape[1:])
    return keras.Model(x, model(x) + 0.0 * keras.ops.sum(x, axis=(1, 2, 3))[:, None])


def test_a_diverged_run_stops_at_the_step_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                             shared_data):
  config = recipes.recipe('fc', width=32, batch_size=32, train_steps=40, preprocessing='mnist')
  out = str(tmp_path / 'run')
  with pytest.raises(trainer.TrainingDivergedError,
                     match=r'became nan at step 8; .* last good checkpoint \(step 5\).*'
                           r'learning_rate'):
    trainer.run_task(_PoisonedTask(config, out, shared_data), trainer.RunOptions(
        checkpoint_every=5, log=lambda *a, **k: None,
        steps_per_execution=1))  # the callback sees every step
  assert not os.path.exists(os.path.join(out, 'results.json'))
  assert tf.train.latest_checkpoint(os.path.join(out, 'checkpoints')).endswith('ckpt-5')


def test_a_checkpoint_evaluates_as_the_finished_run_and_an_unfinished_one_at_its_step(
    tmp_path, shared_data):
  """A finished run's last checkpoint holds its final weights: the binary must give the test
  metrics the run wrote from model.weights.h5 (with ema_decay, only if it swaps the average in
  as the run does). An unfinished run is read at its checkpoint; none yet: one line. The
  weights file holds the model's variables alone, no optimizer slots (issue 32)."""
  config = recipes.recipe('fc', width=32, batch_size=64, train_steps=20, preprocessing='mnist',
                          ema_decay=0.9, seed=1)
  done = _train(config, str(tmp_path / 'done'), shared_data, checkpoint_every=10)
  with h5py.File(tmp_path / 'done' / 'model.weights.h5', 'r') as f:
    stored = []
    f.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
  assert not [name for name in stored if name.startswith('optimizer')], stored
  assert len(stored) == len(classifier.build_for(config).weights), stored
  proc = run_binary('experiments.evaluate_checkpoint', f'--run_dir={tmp_path / "done"}',
                    '--split=test')
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads(proc.stdout.strip().splitlines()[-1])
  assert (record['step'], record['split']) == (20, 'test')
  for key in ('accuracy', 'nll', 'ece', 'loss', 'num_examples'):
    assert record[key] == pytest.approx(done['metrics']['test'][key], rel=1e-5), key
  _train(config, str(tmp_path / 'part'), shared_data, checkpoint_every=10, stop_after_steps=10)
  proc = run_binary('experiments.evaluate_checkpoint', f'--run_dir={tmp_path / "part"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads(proc.stdout.strip().splitlines()[-1])
  assert (record['step'], record['split']) == (10, 'validation')
  assert record['num_examples'] == done['metrics']['validation']['num_examples']
  assert record['nll'] != pytest.approx(done['metrics']['validation']['nll'])  # 10 steps, not 20
  fresh = str(tmp_path / 'fresh')
  run_records.claim_output_dir(fresh, config, shared_data)
  assert re.search(r'error: .*fresh has no checkpoint yet; evaluate it after its first',
                   _one_line_error(run_binary('experiments.evaluate_checkpoint',
                                              f'--run_dir={fresh}')))


def test_the_binary_reports_divergence_in_one_line(tmp_path, shared_data):
  out = str(tmp_path / 'run')
  err = _one_line_error(run_binary(
      'experiments.train', '--model=fc', '--width=32', '--train_steps=50', '--preprocessing=mnist',
      '--learning_rate=1e30', f'--data_dir={shared_data}', f'--output_dir={out}'))
  last_line = err.strip().splitlines()[-1]  # TensorFlow's C++ start-up lines come first
  assert re.fullmatch(r'error: the training loss became (nan|inf) at step \d+; .*', last_line), err
  assert not os.path.exists(os.path.join(out, 'results.json'))


def test_a_run_writes_everything_through_gfile(shared_data):
  """ram:// is a TensorFlow file system that is not the local disk, as gs:// is."""
  out = 'ram://label_smoothing_test/run'
  config = recipes.recipe('fc', width=32, batch_size=64, train_steps=20, preprocessing='mnist')
  assert _train(config, out, shared_data, checkpoint_every=10,
                stop_after_steps=10)['steps_trained'] == 10
  results = _train(config, out, shared_data, checkpoint_every=10)  # resumes from ram://
  assert results['finished'] and not os.path.exists(out)
  assert set(tf.io.gfile.listdir(out)) >= {'config.json', 'checkpoints', 'results.json',
                                           'model.weights.h5', 'logits.npz'}
  assert run_files.read_json(out + '/results.json') == results
  _, splits = classifier.run_logits(out)
  assert splits['test'][0].shape == (10000, 10)
  from experiments import calibration_section, report  # pylint: disable=g-import-not-at-top
  calibration_section.calibrate_run_dirs([out], 'ram://label_smoothing_test/calibration')
  report.write_section_markdown('ram://label_smoothing_test/calibration', 'calibration')
  assert set(tf.io.gfile.listdir('ram://label_smoothing_test/calibration')) == {
      'calibration.json', 'calibration.md', 'reliability.png', 'reliability.pdf',
      'reliability.json'}


def test_the_training_loop_does_not_import_distillation():
  code = 'import sys, models.classifier; assert "distillation" not in sys.modules'
  assert subprocess.run([sys.executable, '-c', code], cwd=ROOT).returncode == 0


def test_more_user_mistakes_get_one_line_errors(tmp_path, shared_data):
  a_file = tmp_path / 'a_file'
  a_file.write_text('x')
  assert 'is a file, not a directory' in _one_line_error(run_binary(
      'experiments.train', '--model=fc', f'--output_dir={a_file}', f'--data_dir={shared_data}'))
  assert f'--data_dir {a_file} is a file' in _one_line_error(run_binary(
      'experiments.train', '--model=fc', f'--output_dir={tmp_path / "r"}', f'--data_dir={a_file}'))
  assert 'cannot create /proc/label_smoothing_run' in _one_line_error(run_binary(
      'experiments.train', '--model=fc', '--output_dir=/proc/label_smoothing_run',
      f'--data_dir={shared_data}'))
  assert 'does not exist' in _one_line_error(run_binary(
      'experiments.calibration', f'--run_dirs={tmp_path / "missing"}',
      f'--output_dir={tmp_path / "c"}'))
  unfinished = tmp_path / 'unfinished'
  unfinished.mkdir()
  (unfinished / 'config.json').write_text(
      json.dumps({'config': run_records.config_to_json(recipes.recipe('fc'))}))
  assert 'has not finished' in _one_line_error(run_binary(
      'experiments.calibration', f'--run_dirs={unfinished}', f'--output_dir={tmp_path / "c"}'))
  assert 'is not a run directory' in _one_line_error(run_binary(
      'experiments.penultimate', '--dataset=mnist', f'--run_dirs={tmp_path},{tmp_path}',
      f'--output_dir={tmp_path / "p"}'))
  assert 'mnist has classes 0 to 9' in _one_line_error(run_binary(
      'experiments.penultimate', '--dataset=mnist', '--classes=0,1,12',
      f'--output_dir={tmp_path / "p"}'))
  assert '--dataset must be one of mnist, cifar10, cifar100, imagenet2012' in _one_line_error(
      run_binary('experiments.penultimate', '--dataset=fashion_mnist', f'--output_dir={tmp_path}'))
  assert '--alphas must be a comma-separated list of numbers in [0.0, 1.0)' in _one_line_error(
      run_binary('experiments.accuracy_table', '--alphas=0,zero', f'--output_dir={tmp_path}'))
  assert 'flag --num_seeds=0: 0 is not' in _one_line_error(
      run_binary('experiments.accuracy_table', '--num_seeds=0', f'--output_dir={tmp_path}'))
  assert '--lr_boundaries must be' in _one_line_error(run_binary(
      'experiments.train', '--model=fc', '--lr_boundaries=0.5,2', f'--output_dir={tmp_path}'))
  assert 'value should be one of' in _one_line_error(run_binary(
      'experiments.train', '--model=fc', '--dtype_policy=bf16', f'--output_dir={tmp_path}'))


def test_evaluation_traces_once_per_model_and_forgets_a_deleted_model():
  """predict_logits once built a new tf.function at every call, so every evaluation of a run
  re-traced the network (tens of seconds for Inception-v4); now one trace per model and batch
  shape, and the cache lets a deleted model go."""
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name='logits')])
  x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(5))).batch(2)
  first, labels = classifier.predict_logits(model, dataset)
  second, _ = classifier.predict_logits(model, dataset)
  np.testing.assert_allclose(first, model(x).numpy(), rtol=1e-6)
  np.testing.assert_array_equal(first, second)
  np.testing.assert_array_equal(labels, np.arange(5))
  assert classifier._logits_step(model)[1].experimental_get_tracing_count() == 1  # pylint: disable=protected-access
  before = len(classifier._LOGITS_STEPS)  # pylint: disable=protected-access
  del model
  gc.collect()
  assert len(classifier._LOGITS_STEPS) == before - 1  # pylint: disable=protected-access
