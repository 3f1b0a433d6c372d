"""Train a classifier by its recipe under a tf.distribute strategy, resumably, and evaluate it.

An output directory holds: config.json (every effective setting), checkpoint.npz (model and
optimizer variables at a step; written atomically), tensorboard/, and, when finished,
model.weights.h5, logits.npz (validation/test logits) and results.json.
"""
import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

import calibration
import data
from models import recipes
from models.losses import SmoothedCrossEntropy
from models.optimizers import MomentumSGD


class RunDirError(Exception):
  """The output directory belongs to a different run."""


def configure_cpu_devices(num_cpu_devices):
  """Splits the CPU into logical devices (must run before TensorFlow initializes)."""
  if num_cpu_devices > 1:
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)


def build_strategy(name='default', tpu=None):
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    devices = tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU')
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or '')
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f'unknown strategy "{name}"; choose default, mirrored, multi_worker or tpu.')


def learning_rate_schedule(config, steps):
  if config.lr_schedule == 'linear':
    return keras.optimizers.schedules.PolynomialDecay(config.learning_rate, steps, 0.0, power=1.0)
  if config.lr_schedule == 'piecewise' and config.lr_boundaries:
    boundaries = [int(round(b * steps)) for b in config.lr_boundaries]
    values = [config.learning_rate * config.lr_decay_factor ** i
              for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
  return config.learning_rate


def build_optimizer(config, steps):
  return MomentumSGD(learning_rate_schedule(config, steps), momentum=config.momentum,
                     dampening=config.dampening, nesterov=config.nesterov,
                     lr_multipliers={'logits': config.last_layer_lr_multiplier},
                     global_clipnorm=config.clip_norm or None)


def build_loss(config):
  """The (smoothed) cross-entropy with hard labels; also the reported evaluation loss."""
  return SmoothedCrossEntropy(config.label_smoothing, config.loss_multiplier,
                              convention=config.label_smoothing_convention)


def training_loss(config):
  """The objective trained: cross-entropy, or the distillation loss for a student."""
  if not config.teacher_dir:
    return build_loss(config)
  from distillation import DistillationLoss  # pylint: disable=g-import-not-at-top
  return DistillationLoss(config.distillation, config.distill_beta, config.distill_temperature,
                          config.student_temperature, config.label_smoothing)


def config_to_json(config):
  return json.loads(json.dumps(dataclasses.asdict(config)))


def claim_output_dir(output_dir, config, data_dir):
  """Writes config.json, or checks an existing one describes the same run."""
  os.makedirs(output_dir, exist_ok=True)
  path = os.path.join(output_dir, 'config.json')
  wanted = config_to_json(config)
  if os.path.exists(path):
    with open(path) as f:  # fields added since that run was written take their defaults
      stored = dict(config_to_json(recipes.TrainConfig(config.model, config.dataset)),
                    **json.load(f)['config'])
    differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    if differing:
      raise RunDirError(f'{output_dir} holds a different run (differs in {", ".join(differing)}); '
                        'choose a new --output_dir or delete that one.')
  with open(path, 'w') as f:
    json.dump({'config': wanted, 'data_dir': data_dir}, f, indent=2)


def _state_variables(model):
  return list(model.variables) + list(model.optimizer.variables)


def save_checkpoint(model, path):
  values = {f'v{i}': np.asarray(v.numpy()) for i, v in enumerate(_state_variables(model))}
  tmp = path + '.tmp.npz'
  np.savez(tmp, **values)
  os.replace(tmp, path)


def restore_checkpoint(model, path):
  """Restores all variables; returns the step trained so far (0 if no checkpoint)."""
  if not os.path.exists(path):
    return 0
  with np.load(path) as values:
    variables = _state_variables(model)
    if len(values.files) != len(variables):
      raise RunDirError(f'{path} does not match this model; delete it to start over.')
    for i, v in enumerate(variables):
      v.assign(values[f'v{i}'])
  return int(model.optimizer.iterations.numpy())


class _Progress(keras.callbacks.Callback):
  """Checkpoints every chunk, stops at the last step, and prints progress with an ETA."""

  def __init__(self, checkpoint_path, total, start, batch_size, log=print):
    super().__init__()
    self.checkpoint_path, self.total, self.batch_size, self.log = (
        checkpoint_path, total, batch_size, log)
    self.start_step, self.start_time = start, time.time()

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def on_train_batch_end(self, batch, logs=None):
    if self._step() >= self.total:
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    step = self._step()
    save_checkpoint(self.model, self.checkpoint_path)
    elapsed = time.time() - self.start_time
    rate = (step - self.start_step) / max(elapsed, 1e-9)
    eta = (self.total - step) / max(rate, 1e-9)
    metrics = ' '.join(f'{k}={v:.4f}' for k, v in (logs or {}).items())
    self.log(f'step {step}/{self.total} ({100.0 * step / self.total:.0f}%) {metrics} '
             f'{rate * self.batch_size:.0f} img/s, eta {eta / 60:.1f} min', flush=True)


def predict_logits(model, dataset):
  logits, labels = [], []
  for images, y in dataset:
    logits.append(model(images, training=False).numpy())
    labels.append(y.numpy())
  return np.concatenate(logits), np.concatenate(labels)


def compile_model(model, config, steps, jit_compile=False):
  metrics = [] if config.teacher_dir else [
      keras.metrics.SparseCategoricalAccuracy(name='accuracy')]
  model.compile(optimizer=build_optimizer(config, steps), loss=training_loss(config),
                metrics=metrics, jit_compile=jit_compile)
  model.optimizer.build(model.trainable_variables)


def build_for(config):
  """The model (uncompiled) for a config, sized for its dataset and preprocessing."""
  from models import build_model  # pylint: disable=g-import-not-at-top  (avoids a cycle)
  return build_model(config, data.num_classes(config.dataset),
                     data.preprocessing.OUTPUT_SHAPES[config.preprocessing])


def read_run_config(run_dir):
  """(TrainConfig, data_dir) recorded in a run directory's config.json."""
  with open(os.path.join(run_dir, 'config.json')) as f:
    stored = json.load(f)
  return recipes.TrainConfig(**stored['config']), stored.get('data_dir')


def finished_results(run_dir):
  """results.json of a finished run, or a RunDirError saying what is missing."""
  if not os.path.isdir(run_dir):
    raise RunDirError(f'{run_dir} does not exist; give the directory of a finished run.')
  path = os.path.join(run_dir, 'results.json')
  if not os.path.exists(path):
    raise RunDirError(f'{run_dir} has not finished (no results.json); train it to the end first.')
  with open(path) as f:
    return json.load(f)


def load_trained(run_dir):
  """(model, config, data_dir it was trained with) of a finished `experiments.train` run."""
  config, data_dir = read_run_config(run_dir)
  weights = os.path.join(run_dir, 'model.weights.h5')
  if not os.path.exists(weights):
    raise RunDirError(f'{run_dir} has no finished model (model.weights.h5); train it first.')
  model = build_for(config)
  model.load_weights(weights)
  return model, config, data_dir


def evaluate(model, config, data_dir, output_dir, eval_batch_size=1000):
  """Logits and metrics on the validation (if non-empty) and test splits."""
  metrics, logits = {}, {}
  for split in ('validation', 'test'):
    if split == 'validation' and config.validation_size == 0:
      continue
    ds = data.build_dataset(config.dataset, split, batch_size=eval_batch_size, training=False,
                            data_dir=data_dir, preprocessing_name=config.preprocessing,
                            validation_size=config.validation_size)
    logits[split], labels = predict_logits(model, ds)
    logits[split + '_labels'] = labels
    metrics[split] = calibration.evaluate_logits(logits[split], labels)
    metrics[split]['loss'] = float(np.mean(build_loss(config).call(labels, logits[split])))
  np.savez(os.path.join(output_dir, 'logits.npz'), **logits)
  return metrics


def train_and_evaluate(config, output_dir, *, data_dir=None, strategy=None, jit_compile=False,
                       checkpoint_every=1000, log=print, stop_after_steps=None):
  """Trains `config` into `output_dir` (resuming if a checkpoint is there) and returns results.

  A finished run (results.json present) is not retrained. stop_after_steps ends training
  early at that step without evaluating, as a kill would (used to test resumption).
  """
  num_train = data.num_examples(config.dataset, 'train', data_dir, config.validation_size)
  claim_output_dir(output_dir, config, data_dir)
  results_path = os.path.join(output_dir, 'results.json')
  if os.path.exists(results_path):
    with open(results_path) as f:
      return json.load(f)
  strategy = strategy or tf.distribute.get_strategy()
  steps = recipes.total_steps(config, num_train)
  keras.backend.clear_session()
  keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    model = build_for(config)
    compile_model(model, config, steps, jit_compile)
  checkpoint_path = os.path.join(output_dir, 'checkpoint.npz')
  start = restore_checkpoint(model, checkpoint_path)
  log(f'{config.model} on {config.dataset}, alpha={config.label_smoothing}: {steps} steps of '
      f'{config.batch_size} ({model.count_params():,} parameters, '
      f'{strategy.num_replicas_in_sync} replica(s)); starting at step {start}.', flush=True)
  stop = min(steps, stop_after_steps or steps)
  began = time.time()
  extra = {}
  if config.teacher_dir:
    from distillation import smoothness_index, teacher  # pylint: disable=g-import-not-at-top
    teacher_logits, train_labels = teacher.teacher_train_logits(config.teacher_dir, config,
                                                                data_dir)
    extra['teacher_smoothness_index'] = smoothness_index(teacher_logits, train_labels,
                                                         config.distill_temperature)
  if start < stop:
    train_ds = data.build_dataset(config.dataset, 'train', batch_size=config.batch_size,
                                  training=True, data_dir=data_dir, seed=config.seed,
                                  preprocessing_name=config.preprocessing,
                                  validation_size=config.validation_size, start_step=start,
                                  with_index=bool(config.teacher_dir))
    if config.teacher_dir:
      train_ds = teacher.attach_teacher_logits(train_ds, teacher_logits)
    chunk = min(checkpoint_every, stop)
    model.fit(train_ds, epochs=-(-stop // chunk), initial_epoch=start // chunk,
              steps_per_epoch=chunk, verbose=0, shuffle=False, callbacks=[
                  _Progress(checkpoint_path, stop, start, config.batch_size, log),
                  keras.callbacks.TensorBoard(os.path.join(output_dir, 'tensorboard'))])
  trained = int(model.optimizer.iterations.numpy())
  if trained < steps:
    return {'steps_trained': trained, 'finished': False}
  model.save_weights(os.path.join(output_dir, 'model.weights.h5'))
  results = {'config': config_to_json(config), 'steps_trained': trained, 'finished': True,
             **extra,
             'train_seconds_this_session': round(time.time() - began, 1),
             'metrics': evaluate(model, config, data_dir, output_dir)}
  with open(results_path + '.tmp', 'w') as f:
    json.dump(results, f, indent=2)
  os.replace(results_path + '.tmp', results_path)
  return results


def run_logits(run_dir, data_dir=None):
  """(config, {'validation': (logits, labels), 'test': (logits, labels)}) of a finished run.

  Reads logits.npz, or recomputes it from model.weights.h5 when it is missing.
  """
  path = os.path.join(run_dir, 'logits.npz')
  config, stored_data_dir = read_run_config(run_dir)
  if not os.path.exists(path):
    model, _, _ = load_trained(run_dir)
    evaluate(model, config, data_dir or stored_data_dir, run_dir)
  with np.load(path) as values:
    splits = {s: (values[s], values[s + '_labels']) for s in ('validation', 'test')
              if s in values.files}
  return config, splits
