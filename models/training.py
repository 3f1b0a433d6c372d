"""The one training loop (run_task) and the image classifier's task on it.

run_task trains any Task (a classifier, a distillation student, a Transformer) under a
tf.distribute strategy, resumably: the run directory's claim and lock, dtype policy and seed,
checkpoints, progress with ETA, TensorBoard, the divergence stop, and one results writer. The
run directory (data/run_files.py) holds config.json, checkpoints/, tensorboard/ and, when
finished, model.weights.h5, results.json and what the task's evaluation keeps (a classifier:
logits.npz of the validation and test splits); under a multi-worker strategy only the chief
writes there. A student hands its own loss, model wrapper and inputs in as an `Objective`, so
this module knows nothing of teachers.
"""
import dataclasses
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

import calibration
import data
from data import run_files
from data import run_lock
from data.run_files import RunDirError  # pylint: disable=unused-import  (re-exported)
from models import keras_multi_worker
from models import recipes
from models import selection
from models.losses import SmoothedCrossEntropy
from models.optimizers import LinearWarmup, MomentumSGD


class TrainingDivergedError(Exception):
  """The loss became NaN or infinite; the run stopped without results."""


class Stopped(BaseException):
  """Training stopped on SIGTERM (a preemption) or Ctrl-C; the message says where and how to
  resume. A BaseException, as KeyboardInterrupt is, so no `except Exception` swallows it."""

  def __init__(self, message, signum):
    super().__init__(message)
    self.exit_code = 128 + signum  # the shell's status of a process ended by that signal


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
    schedule = keras.optimizers.schedules.PolynomialDecay(config.learning_rate, steps, 0.0,
                                                          power=1.0)
  elif config.lr_schedule == 'piecewise' and config.lr_boundaries:
    boundaries = recipes.learning_rate_drops(config, steps)
    values = [config.learning_rate * config.lr_decay_factor ** i
              for i in range(len(boundaries) + 1)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
  else:
    schedule = config.learning_rate
  warmup_steps = int(round(config.lr_warmup_fraction * steps))
  return LinearWarmup(schedule, warmup_steps) if warmup_steps else schedule


def build_optimizer(config, steps):
  """The recipe's SGD; with ema_decay, TF-slim's moving average of the model's variables
  (MomentumSGD.build), which run_task swaps in to save and evaluate."""
  return MomentumSGD(learning_rate_schedule(config, steps), momentum=config.momentum,
                     dampening=config.dampening, nesterov=config.nesterov,
                     lr_multipliers={'logits': config.last_layer_lr_multiplier},
                     global_clipnorm=config.clip_norm or None, average_decay=config.ema_decay)


def build_loss(config):
  """The (smoothed) cross-entropy with hard labels; also the reported evaluation loss."""
  return SmoothedCrossEntropy(config.label_smoothing, config.loss_multiplier,
                              convention=config.label_smoothing_convention)


@dataclasses.dataclass
class Objective:
  """What a run optimizes, when it is not the (smoothed) cross-entropy on its own labels.

  wrap(model) -> the model `fit` trains (called inside the strategy scope; it must share the
  trained model's variables); train_dataset(data_dir, start_step) -> batches of (inputs of
  that model, targets); results: extra entries for results.json. distillation.student_objective
  builds the one students use.
  """
  loss: keras.losses.Loss
  wrap: Callable
  train_dataset: Callable
  results: dict = dataclasses.field(default_factory=dict)


def train_dataset(config, data_dir, start_step, **kwargs):
  """The recipe's augmented training stream, continuing at `start_step` (endless, or the run's
  remaining steps for a streamed dataset); with an auxiliary head, labels for both outputs."""
  if data.DATASETS[config.dataset].streamed:
    num_train = data.num_examples(config.dataset, 'train', data_dir, config.validation_size)
    kwargs.setdefault('num_steps', recipes.total_steps(config, num_train) - start_step)
    kwargs.setdefault('dtype_policy', config.dtype_policy)  # bfloat16 images leave the host
  if config.image_size:
    kwargs.setdefault('image_size', config.image_size)
  stream = data.build_dataset(config.dataset, 'train', batch_size=config.batch_size,
                              training=True, data_dir=data_dir, seed=config.seed,
                              preprocessing_name=config.preprocessing,
                              validation_size=config.validation_size, start_step=start_step,
                              **kwargs)
  if recipes.has_aux_head(config):
    stream = stream.map(lambda x, y: (x, (y, y)))
  return stream


def classifier_objective(config):
  """The (smoothed) cross-entropy on the labels: every run that is not a student."""
  return Objective(loss=build_loss(config), wrap=lambda model: model,
                   train_dataset=lambda data_dir, start: train_dataset(config, data_dir, start))


def config_to_json(config):
  return json.loads(json.dumps(dataclasses.asdict(config)))


def claim_output_dir(output_dir, config, data_dir):
  """Writes config.json, or checks an existing one describes the same run."""
  run_files.make_dir(output_dir)
  check_same_run(output_dir, config)
  run_files.write_json(os.path.join(output_dir, 'config.json'), {
      'config': config_to_json(config), 'config_type': type(config).__name__,
      'data_dir': data_dir})


def check_same_run(output_dir, config):
  """A RunDirError if output_dir's config.json (when there is one) describes another run."""
  if not run_files.gfile.exists(os.path.join(output_dir, 'config.json')):
    return
  wanted = config_to_json(config)
  # Fields added since that run was written take their defaults.
  stored = config_to_json(read_run_config(output_dir)[0])
  differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
  if differing:
    raise RunDirError(f'{output_dir} holds a different run (differs in {", ".join(differing)}); '
                      'choose a new --output_dir or delete that one.')


def _likely_fix(config):
  fixes = ['lower --learning_rate', 'set --clip_norm (e.g. 1.0)']
  if config.model == 'fc':
    fixes.append('check --init_variance (0.0009 is the default that trains)')
  return ', '.join(fixes)


class _Progress(keras.callbacks.Callback):
  """Checkpoints every chunk, stops at the last step or a non-finite loss, prints an ETA."""

  def __init__(self, checkpoints, total, start, config, log=print, queued_seconds=0.0):
    super().__init__()
    self.checkpoints, self.total, self.config, self.log = checkpoints, total, config, log
    self.start_step, self.start_time, self.last_saved = start, time.time(), start
    self.queued_seconds = queued_seconds  # a sweep's estimated work after this run

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def on_train_batch_end(self, batch, logs=None):
    step = self._step()
    loss = (logs or {}).get('loss')
    if loss is not None and not math.isfinite(float(loss)):
      raise TrainingDivergedError(
          f'the training loss became {float(loss)} at step {step}; the run stopped without '
          f'results and keeps its last good checkpoint (step {self.last_saved}). Likely fix: '
          f'{_likely_fix(self.config)}.')
    if step >= self.total:
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    step = self._step()
    self.checkpoints.save(step)
    self.last_saved = step
    elapsed = time.time() - self.start_time
    rate = (step - self.start_step) / max(elapsed, 1e-9)
    eta = (self.total - step) / max(rate, 1e-9)
    metrics = ' '.join(f'{k}={v:.4f}' for k, v in (logs or {}).items())
    unit = getattr(self.config, 'BATCH_UNIT', 'examples')
    sweep = (f', sweep eta {(eta + self.queued_seconds) / 3600:.1f} h' if self.queued_seconds
             else '')
    self.log(f'step {step}/{self.total} ({100.0 * step / self.total:.0f}%) {metrics} '
             f'{rate * self.config.batch_size:.0f} {unit}/s, eta {eta / 60:.1f} min{sweep}',
             flush=True)


def _signal_name(signum):
  return 'Ctrl-C (SIGINT)' if signum == signal.SIGINT else signal.Signals(signum).name


class _StopSignals:
  """While training, SIGTERM (a preemptible VM's or TPU's notice) and a first Ctrl-C only ask
  training to stop; a second Ctrl-C stops at once (KeyboardInterrupt). Python runs handlers
  between the main thread's bytecodes, so a request made during a step is seen at its end."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum, self._previous = 0, {}

  def _request(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.signum:
      raise KeyboardInterrupt
    self.signum = self.signum or signum

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():  # where signal.signal works
      # An ignored signal stays ignored: a job started with `&` must not stop on Ctrl-C.
      self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS
                        if signal.getsignal(s) is not signal.SIG_IGN}
    return self

  def __exit__(self, *exc_info):
    for s, handler in self._previous.items():
      signal.signal(s, signal.SIG_DFL if handler is None else handler)
    self._previous = {}


# Under multi-worker training the workers agree on a stop every this many steps (and at every
# checkpoint): one all-reduce each time, 7 ms on fc's 33 ms step over localhost gRPC.
MULTI_WORKER_SIGNAL_EVERY = 10


class _StopOnSignal(keras.callbacks.Callback):
  """fit's last callback: when a stop was asked for, saves a checkpoint at the step that just
  ended, after every other callback saw it (at an epoch's end, after their on_epoch_end too),
  and raises Stopped. The data stream and every variable resume from any step, so a rerun
  continues as if never stopped. Under a multi-worker strategy any worker's signal stops all of
  them at the same step (a save is collective there), within MULTI_WORKER_SIGNAL_EVERY steps."""

  def __init__(self, signals, checkpoints, steps, strategy, chunk, stop):
    super().__init__()
    self.signals, self.checkpoints, self.steps, self.strategy = (signals, checkpoints, steps,
                                                                 strategy)
    self.chunk, self.stop, self._agree = chunk, stop, None

  def _any_worker(self, signum):
    """The signal any worker got (0: none); every worker calls this at the same steps."""
    if self._agree is None:
      strategy = self.strategy

      @tf.function
      def agree(received):  # compiled: eagerly it cost 17 ms, not 7
        return strategy.reduce('SUM', strategy.run(tf.identity, args=(received,)), axis=None)
      self._agree = agree
    counts = self._agree(tf.constant([int(signum == s) for s in _StopSignals.SIGNALS])).numpy()
    return next((s for s, n in zip(_StopSignals.SIGNALS, counts) if n), 0)

  def stop_if_requested(self, step, epoch_end=False):
    signum = self.signals.signum
    if keras_multi_worker.is_multi_worker(self.strategy):
      if not epoch_end and step % MULTI_WORKER_SIGNAL_EVERY:
        return
      signum = self._any_worker(signum)
    if not signum:
      return
    if step != self.checkpoints.step:
      self.checkpoints.save(step)
    raise Stopped(f'stopped by {_signal_name(signum)} at step {step} of {self.steps}, with a '
                  f'checkpoint there ({self.checkpoints.chief_dir}); rerun the same command to '
                  f'resume from step {step}.', signum)

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def on_train_batch_end(self, batch, logs=None):
    step = self._step()
    if step % self.chunk and step < self.stop:  # else an epoch ends here: on_epoch_end decides
      self.stop_if_requested(step)

  def on_epoch_end(self, epoch, logs=None):
    self.stop_if_requested(self._step(), epoch_end=True)


def _fit_segments(start, stop, chunk):
  """(first step, last step, steps_per_epoch) of the fit calls from start to stop, whose
  epochs (a checkpoint, a progress line, a score on the validation split) end at multiples of
  chunk and at stop: a run stopped between them (a preemption) first completes its chunk."""
  boundary = min(stop, -(-start // chunk) * chunk)
  if start % chunk and boundary > start:
    yield start, boundary, boundary - start
    start = boundary
  if start < stop:
    yield start, stop, chunk


# model -> its compiled evaluation step: traced once per model and batch shape, not per call (an
# Inception-v4 trace costs tens of seconds, and a run evaluates at every checkpoint).
_LOGITS_STEPS = weakref.WeakKeyDictionary()


def _logits_step(model):
  """(replicas, tf.function images -> main-output logits), one step split among the replicas
  of this worker (the chief evaluates alone under multi-worker training)."""
  if model not in _LOGITS_STEPS:
    strategy = model.distribute_strategy
    replicas = len(strategy.experimental_local_results(  # this worker's
        strategy.experimental_distribute_values_from_function(lambda _: tf.zeros(()))))

    model_ref = weakref.ref(model)  # a strong one here would keep the model's entry forever

    @tf.function
    def logits_of(images):
      parts = tf.split(images, replicas)
      per_replica = strategy.experimental_distribute_values_from_function(
          lambda context: parts[context.replica_id_in_sync_group % replicas])
      outputs = strategy.run(lambda x: model_ref()(x, training=False), args=(per_replica,))
      main = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
      return tf.concat(strategy.experimental_local_results(main), 0)
    _LOGITS_STEPS[model] = replicas, logits_of
  return _LOGITS_STEPS[model]


def predict_logits(model, dataset):
  """(logits, labels) of a pass in the dataset's order; a model with an auxiliary head is read
  by its main output. One compiled step a batch, split among the replicas of the model's
  strategy (_logits_step)."""
  replicas, logits_of = _logits_step(model)
  logits, labels, rows = [], [], None
  for images, y in dataset:
    count = int(tf.shape(images)[0])
    rows = rows or -(-count // replicas) * replicas  # the first batch's, for every replica
    # A final partial batch is padded to that (one trace, equal parts) and the padding dropped.
    padded = tf.pad(images, [[0, rows - count]] + [[0, 0]] * (images.shape.rank - 1))
    logits.append(logits_of(padded)[:count].numpy())
    labels.append(y.numpy())
  return np.concatenate(logits), np.concatenate(labels)


def compile_model(model, config, steps, jit_compile=False, loss=None, steps_per_execution=1,
                  averaged=None):
  """Compiles with the recipe's optimizer; accuracy is tracked for plain classifiers only. A
  model with an auxiliary head trains loss(main) + aux_loss_weight * loss(auxiliary). With
  ema_decay the optimizer averages the variables of `averaged` (default: `model`'s; a student
  wrapper passes the student, not its teacher), batch-norm statistics included."""
  metrics = [keras.metrics.SparseCategoricalAccuracy(name='accuracy')] if loss is None else []
  loss = loss or build_loss(config)
  weights = None
  if recipes.has_aux_head(config):
    loss, weights, metrics = [loss, loss], [1.0, config.aux_loss_weight], [metrics, []]
  model.compile(optimizer=build_optimizer(config, steps), loss=loss, loss_weights=weights,
                metrics=metrics, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
  model.optimizer.build(model.trainable_variables, averaged=(averaged or model).variables)


def build_for(config):
  """The model (uncompiled) for a config, sized for its dataset and preprocessing."""
  from models import build_model  # pylint: disable=g-import-not-at-top  (avoids a cycle)
  return build_model(config, data.num_classes(config.dataset),
                     input_shape(config))


def input_shape(config):
  """The model's input: its chain's output shape, or image_size square views."""
  shape = data.preprocessing.OUTPUT_SHAPES[config.preprocessing]
  return (config.image_size, config.image_size, shape[2]) if config.image_size else shape


def read_run_config(run_dir):
  """(TrainConfig, data_dir) recorded in a run directory's config.json."""
  path = os.path.join(run_dir, 'config.json')
  if not run_files.gfile.exists(run_dir):
    raise RunDirError(f'{run_dir} does not exist; give the directory of a training run.')
  if not run_files.gfile.isdir(run_dir):
    raise RunDirError(f'{run_dir} is a file; give the directory of a training run.')
  if not run_files.gfile.exists(path):
    raise RunDirError(f'{run_dir} is not a run directory (no config.json); give one written '
                      'by experiments.train or a section binary.')
  stored = run_files.read_json(path)
  try:
    config_type = getattr(recipes, stored.get('config_type', 'TrainConfig'))
    return config_type(**stored['config']), stored.get('data_dir')
  except (AttributeError, KeyError, TypeError) as e:  # valid JSON, but not a run's settings
    raise run_files.unreadable(path, f'not a run configuration: {type(e).__name__} {e}') from None


def finished_results(run_dir):
  """results.json of a finished run, or a RunDirError saying what is missing."""
  read_run_config(run_dir)
  path = os.path.join(run_dir, 'results.json')
  if not run_files.gfile.exists(path):
    raise RunDirError(f'{run_dir} has not finished (no results.json); train it to the end first.')
  return run_files.read_json(path)


def load_trained(run_dir):
  """(model, config, data_dir it was trained with) of a finished `experiments.train` run."""
  config, data_dir = read_run_config(run_dir)
  weights = os.path.join(run_dir, 'model.weights.h5')
  if not run_files.gfile.exists(weights):
    raise RunDirError(f'{run_dir} has not finished (no model.weights.h5); train it to the end '
                      'first.')
  model = build_for(config)
  load_weights(model, weights)
  return model, config, data_dir


def load_weights(model, path):
  """model.load_weights(path), with one line naming the file when it does not read back."""
  try:
    model.load_weights(path)
  except (OSError, ValueError, KeyError) as e:
    raise run_files.unreadable(
        path, f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}',
        'delete it and results.json beside it and rerun the command that trained this run: it '
        'saves the weights again from the final checkpoint (or trains again where there is '
        'none)') from None


def split_dataset(config, data_dir, split, batch_size=1000):
  """One ordered pass over a split through the config's evaluation chain."""
  return data.build_dataset(config.dataset, split, batch_size=batch_size, training=False,
                            data_dir=data_dir, preprocessing_name=config.preprocessing,
                            image_size=config.image_size, validation_size=config.validation_size)


def evaluate(model, config, data_dir, output_dir, eval_batch_size=1000):
  """Logits and metrics on the validation (if non-empty) and test splits."""
  metrics, logits = {}, {}
  for split in ('validation', 'test'):
    if split == 'validation' and config.validation_size == 0:
      continue
    logits[split], labels = predict_logits(model, split_dataset(config, data_dir, split,
                                                                eval_batch_size))
    logits[split + '_labels'] = labels
    metrics[split] = calibration.evaluate_logits(logits[split], labels)
    metrics[split]['loss'] = float(np.mean(build_loss(config).call(labels, logits[split])))
  run_files.write_npz(os.path.join(output_dir, 'logits.npz'), **logits)
  return metrics


def build_under_policy(config, strategy, build):
  """build() inside the strategy scope, after clear_session, under config.dtype_policy and the
  config's seed; the caller's dtype policy is restored afterwards (built layers keep theirs)."""
  previous_policy = keras.config.dtype_policy()
  keras.backend.clear_session()  # this also resets the dtype policy, so it is set after
  keras.config.set_dtype_policy(config.dtype_policy)
  keras.utils.set_random_seed(config.seed)
  keras_multi_worker.enable(strategy)
  try:
    with strategy.scope():
      return build()
  finally:
    keras.config.set_dtype_policy(previous_policy)


# Training steps per call into the compiled step when --steps_per_execution is 0 (auto): each
# call costs about 1 ms of Python and executor start, 8% of fc's 12 ms bf16 step; 20 steps a
# call measured no faster than 10 (issue 19).
AUTO_STEPS_PER_EXECUTION = 10
# ...except for runs with fewer steps than this left: Keras traces a multi-step call's step
# twice (before its loop and inside it), which costs more than the ~1 ms a step saves on so few
# steps (an Inception-v4 step's trace took 36 s on a 2-core Zen 3).
AUTO_MIN_STEPS = 1000


def resolve_steps_per_execution(requested, periods, steps_left=None):
  """`requested`, or for 0 (auto) the largest divisor of AUTO_STEPS_PER_EXECUTION that divides
  every period (the steps where a run resumes, checkpoints, stops or records), or 1 with fewer
  than AUTO_MIN_STEPS steps left: callbacks see only every steps_per_execution-th step."""
  if not requested and steps_left is not None and steps_left < AUTO_MIN_STEPS:
    return 1
  return requested or math.gcd(AUTO_STEPS_PER_EXECUTION, *periods)


def _check_steps_per_execution(steps_per_execution, chunk, stop, start):
  """Callbacks see every steps_per_execution-th step only: the steps where a run resumes, saves
  or stops must be among them."""
  for what, n in (('--checkpoint_every', chunk), ('the steps to train (or --stop_after_steps)',
                                                  stop), ('the step it resumes from', start)):
    if n % steps_per_execution:
      raise ValueError(f'{what} ({n}) is not a multiple of --steps_per_execution '
                       f'({steps_per_execution}); choose a divisor of each.')


def fit_resumably(model, trained, config, output_dir, steps, train_dataset, *, strategy,
                  checkpoint_every=1000, log=print, stop_after_steps=None, callbacks=None,
                  describe='', queued_seconds=0.0, steps_per_execution=0):
  """Trains `trained` (whose variables include `model`'s) up to `steps` from the last
  checkpoint in output_dir; returns the step reached. train_dataset(start) is the stream from
  step `start`. Checkpoints, TensorBoard and progress go to output_dir (the chief's only); a
  non-finite loss raises TrainingDivergedError. SIGTERM or Ctrl-C saves a checkpoint where the
  callbacks next see a step and raises Stopped (a second Ctrl-C: at once). steps_per_execution
  0 chooses it (resolve_steps_per_execution; a callback that acts every N steps has the
  attribute `every`)."""
  stop = min(steps, stop_after_steps or steps)
  chunk = min(checkpoint_every, stop)
  chief = run_files.is_chief(strategy)
  checkpoints = run_files.Checkpoints(model, trained.optimizer, output_dir, chief)
  start = checkpoints.restore(log)
  log(f'{describe}: {steps} steps of {config.batch_size} ({model.count_params():,} parameters, '
      f'{strategy.num_replicas_in_sync} replica(s), {config.dtype_policy}); starting at step '
      f'{start}.', flush=True)
  log_dir = (os.path.join(output_dir, 'tensorboard') if chief
             else tempfile.mkdtemp(prefix='worker_tensorboard_'))
  try:
    extra_callbacks = callbacks(chief) if callbacks else []
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
      # Keras 3.15's multi-step loop over a multi-worker iterator fails ("You must feed a
      # value for placeholder tensor ... while/cond/Placeholder", the error of the open
      # keras-team/keras#19246): one step a call there.
      if steps_per_execution > 1:
        raise ValueError('--steps_per_execution above 1 fails under --strategy=multi_worker '
                         '(a Keras bug); leave it at 0 or 1.')
      steps_per_execution = 1
    trained.steps_per_execution = resolve_steps_per_execution(steps_per_execution, [
        chunk, stop, start, *(c.every for c in extra_callbacks if hasattr(c, 'every'))],
                                                              stop - start)
    _check_steps_per_execution(trained.steps_per_execution, chunk, stop, start)
    if start < stop:
      tensorboard = keras.callbacks.TensorBoard(log_dir)
      with _StopSignals() as signals:
        stopper = _StopOnSignal(signals, checkpoints, steps, strategy, chunk, stop)
        fit_callbacks = [_Progress(checkpoints, stop, start, config, log, queued_seconds),
                         tensorboard, *extra_callbacks, stopper]
        try:
          for begin, end, epoch_steps in _fit_segments(start, stop, chunk):
            trained.fit(train_dataset(begin), epochs=-(-end // chunk),
                        initial_epoch=begin // chunk, steps_per_epoch=epoch_steps, verbose=0,
                        shuffle=False, callbacks=fit_callbacks)
            # A signal after the segment's last step (its checkpoint is written).
            stopper.stop_if_requested(int(trained.optimizer.iterations.numpy()), epoch_end=True)
        except Stopped:
          tensorboard.on_train_end()  # closes its writers, which fit left open
          raise
        except KeyboardInterrupt:  # a second Ctrl-C
          resume = (f'step {checkpoints.step}, its last checkpoint' if checkpoints.step
                    else 'step 0 (no checkpoint yet)')
          raise Stopped(f'stopped by a second Ctrl-C during step '
                        f'{int(trained.optimizer.iterations.numpy()) + 1} of {steps}; rerun the '
                        f'same command to resume from {resume}.', signal.SIGINT) from None
  finally:
    checkpoints.close()
    if not chief:
      shutil.rmtree(log_dir, ignore_errors=True)
  return int(trained.optimizer.iterations.numpy())


@dataclasses.dataclass
class Task:
  """What run_task trains, for one run: image classification, a distillation student and
  translation are each one of these.

  build() -> (model, trained): called in the strategy scope under the config's dtype policy;
  `trained` (compiled) holds `model`'s variables and is what fit runs, `model` what is saved.
  train_dataset(start_step) -> the training stream from that step (a resumed run sees the
  batches an uninterrupted one would). evaluate(model) -> the metrics of results.json (also
  writing whatever else the run keeps, such as logits), or None. results: extra entries of
  results.json. describe: the run in the progress lines. callbacks and choose: a task that
  keeps other weights than its last (models.selection).
  """
  steps: int
  build: Callable
  train_dataset: Callable
  describe: str
  evaluate: Optional[Callable] = None
  results: dict = dataclasses.field(default_factory=dict)
  callbacks: Optional[Callable] = None  # (model, chief) -> the task's own Keras callbacks
  choose: Optional[Callable] = None     # model -> record of the weights it loads to keep
  # (start_step, tf.distribute.InputContext) -> one input pipeline's share of the stream in
  # per-replica batches: a task whose stream splits by file (streamed datasets) sets it, so
  # that under a strategy each host reads and decodes only its own shards.
  pipeline_dataset: Optional[Callable] = None


def training_stream(task, strategy):
  """start_step -> what fit reads: the task's stream, or under a distribution strategy and
  with task.pipeline_dataset, one pipeline per host through distribute_datasets_from_function
  (strategy.experimental_distribute_dataset would have every host read every example)."""
  if task.pipeline_dataset is None or strategy is tf.distribute.get_strategy():
    return task.train_dataset
  return lambda start: strategy.distribute_datasets_from_function(
      lambda context: task.pipeline_dataset(start, context))


def run_task(config, output_dir, make_task, *, data_dir=None, strategy=None,
             checkpoint_every=1000, log=print, stop_after_steps=None, callbacks=None,
             queued_seconds=0.0, steps_per_execution=0):
  """The one training loop: claims output_dir for `config`, returns the results of a finished
  run without training, else takes the run's lock, builds make_task(chief) (a Task), trains it
  resumably (fit_resumably) and, when it reaches its last step, saves the weights, evaluates
  and writes results.json (the chief only). stop_after_steps ends training early without
  evaluating, as a kill would; callbacks(chief) returns extra Keras callbacks; queued_seconds is
  a sweep's estimated work after this run (the sweep ETA). A non-finite loss raises
  TrainingDivergedError and writes no results."""
  strategy = strategy or tf.distribute.get_strategy()
  chief = run_files.is_chief(strategy)
  if chief:
    claim_output_dir(output_dir, config, data_dir)
  results_path = os.path.join(output_dir, 'results.json')
  if run_files.gfile.exists(results_path):
    return run_files.read_json(results_path)
  with run_lock.hold(output_dir, chief, log):  # one writer: a second copy refuses at once
    task = make_task(chief)
    model, trained = build_under_policy(config, strategy, task.build)
    began = time.time()
    all_callbacks = lambda chief: ((callbacks(chief) if callbacks else []) +
                                   (task.callbacks(model, chief) if task.callbacks else []))
    done = fit_resumably(model, trained, config, output_dir, task.steps,
                         training_stream(task, strategy),
                         strategy=strategy, checkpoint_every=checkpoint_every, log=log,
                         stop_after_steps=stop_after_steps, callbacks=all_callbacks,
                         queued_seconds=queued_seconds, describe=task.describe,
                         steps_per_execution=steps_per_execution)
    if done < task.steps:
      return {'steps_trained': done, 'finished': False}
    results = {'config': config_to_json(config), 'steps_trained': done, 'finished': True,
               **task.results, 'train_seconds_this_session': round(time.time() - began, 1)}
    if not chief:  # the chief evaluates and writes; the other workers only helped train
      return results
    # The weight average (if the optimizer keeps one) is what the run saves and evaluates.
    getattr(trained.optimizer, 'swap_average', lambda: None)()
    if task.choose:
      results['kept_weights'] = task.choose(model)
    model.save_weights(os.path.join(output_dir, 'model.weights.h5'))
    if task.evaluate:
      results['metrics'] = task.evaluate(model)
    run_files.write_json(results_path, results)
    return results


def describe(config):
  return f'{config.model} on {config.dataset}, alpha={config.label_smoothing}'


def train_and_evaluate(config, output_dir, *, data_dir=None, strategy=None, jit_compile=False,
                       checkpoint_every=1000, log=print, stop_after_steps=None, objective=None,
                       callbacks=None, queued_seconds=0.0, steps_per_execution=0):
  """Trains the classifier `config` into `output_dir` with run_task (resuming, or returning a
  finished run's results) and evaluates it on the validation and test splits.

  `objective` is a function returning the run's Objective, called only if the run trains; a
  student (config.teacher_dir set) needs one (distillation.train_student passes it).
  steps_per_execution: as fit_resumably.
  """
  if config.teacher_dir and objective is None:
    raise ValueError('a student run (teacher_dir set) needs its objective; train it with '
                     'distillation.train_student.')
  num_train = data.num_examples(config.dataset, 'train', data_dir, config.validation_size)

  def make_task(chief):
    del chief
    run_objective = objective() if objective else classifier_objective(config)
    steps = recipes.total_steps(config, num_train)

    def build():
      model = build_for(config)
      trained = run_objective.wrap(model)
      compile_model(trained, config, steps, jit_compile,
                    loss=None if trained is model else run_objective.loss, averaged=model)
      return model, trained
    task = Task(steps=steps, build=build,
                train_dataset=lambda start: run_objective.train_dataset(data_dir, start),
                describe=describe(config), results=run_objective.results,
                evaluate=lambda model: evaluate(model, config, data_dir, output_dir))
    if objective is None and data.DATASETS[config.dataset].streamed:
      task.pipeline_dataset = lambda start, context: train_dataset(config, data_dir, start,
                                                                   input_context=context)
    if config.select_by_validation:
      task.callbacks = lambda model, chief: [selection.BestOnValidation(
          model, lambda: predict_logits(model, split_dataset(config, data_dir, 'validation')),
          output_dir, chief, log)]
      task.choose = lambda model: _load_best(model, output_dir)
    return task
  return run_task(config, output_dir, make_task, data_dir=data_dir, strategy=strategy,
                  checkpoint_every=checkpoint_every, log=log, stop_after_steps=stop_after_steps,
                  callbacks=callbacks, queued_seconds=queued_seconds,
                  steps_per_execution=steps_per_execution)


def _load_best(model, run_dir):
  """Loads the weights kept by validation accuracy (models.selection); returns their record."""
  path, record = selection.best_weights(run_dir)
  if path is None:
    raise RunDirError(f'{run_dir} selects its weights by validation accuracy but holds no '
                      f'{selection.BEST_WEIGHTS}; delete the run directory and train it again.')
  load_weights(model, path)
  return record


def run_logits(run_dir, data_dir=None, log=print):
  """(config, {'validation': (logits, labels), 'test': (logits, labels)}) of a finished run.

  Reads logits.npz, or recomputes it from model.weights.h5 when it is missing or unreadable.
  """
  path = os.path.join(run_dir, 'logits.npz')
  config, stored_data_dir = read_run_config(run_dir)
  try:
    values = run_files.read_npz(path) if run_files.gfile.exists(path) else None
  except RunDirError:
    if not run_files.gfile.exists(os.path.join(run_dir, 'model.weights.h5')):
      raise
    log(f'note: {path} does not read back as an .npz archive; recomputing it from '
        'model.weights.h5 beside it.', flush=True)
    values = None
  if values is None:
    model, _, _ = load_trained(run_dir)
    evaluate(model, config, data_dir or stored_data_dir, run_dir)
    values = run_files.read_npz(path)
  return config, {s: (values[s], values[s + '_labels']) for s in ('validation', 'test')
                  if s in values}
