"""The one training loop: run_task trains any Task (an image classifier, a distillation student,
a Transformer) under a tf.distribute strategy, resumably.

It owns what every run shares: the run directory's claim and lock, dtype policy and seed,
checkpoints, progress with ETA, TensorBoard, the stop on SIGTERM or Ctrl-C, the divergence stop
and one results writer. The run directory (data/run_directory) holds config.json, checkpoints/,
tensorboard/ and, when finished, model.weights.h5, results.json and whatever the task's
evaluation keeps; under a multi-worker strategy only the chief writes there. A task says what
is trained (its model, loss, input stream and evaluation) through the methods of `Task`; the
runtime settings (strategy, checkpoint and stop steps, steps per call, XLA, logging) come in
one `RunOptions`. This module knows nothing of images, teachers or sentences.
"""
import dataclasses
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from typing import Callable, Optional

import keras
import tensorflow as tf

from data.run_directory import run_files
from data.run_directory import run_lock
from data.run_directory.checkpoints import Checkpoints
from models import keras_multi_worker
from models import run_records


class TrainingDivergedError(Exception):
  """The loss became NaN or infinite; the run stopped without results."""


class Stopped(BaseException):
  """Training stopped on SIGTERM (a preemption) or Ctrl-C; the message says where and how to
  resume. A BaseException, as KeyboardInterrupt is, so no `except Exception` swallows it."""

  def __init__(self, message, signum):
    super().__init__(message)
    self.exit_code = 128 + signum  # the shell's status of a process ended by that signal


@dataclasses.dataclass
class RunOptions:
  """How a run trains, not what it trains: built once from the runtime flags
  (experiments.common.run_options) and handed down unchanged.

  strategy: the tf.distribute strategy (None: the default one). checkpoint_every: steps between
  checkpoints, progress lines and the epochs of fit. stop_after_steps: end training there
  without evaluating, as a kill would. steps_per_execution: steps per call into the compiled
  step (0: chosen, resolve_steps_per_execution). jit_compile: XLA. log: where progress goes.
  queued_seconds: a sweep's estimated work after this run (for the sweep's ETA).
  """
  strategy: Optional[tf.distribute.Strategy] = None
  checkpoint_every: int = 1000
  stop_after_steps: Optional[int] = None
  steps_per_execution: int = 0
  jit_compile: bool = False
  log: Callable = print
  queued_seconds: float = 0.0

  def distribution(self):
    """The strategy runs train under."""
    return self.strategy or tf.distribute.get_strategy()


class Task:
  """What run_task trains, one run: subclasses are models.classifier.ClassifierTask,
  distillation.StudentTask and models.translation_training.TranslationTask.

  The trainer calls, in order: prepare (only when the run still trains), build (inside the
  strategy scope, under the config's dtype policy and seed), train_dataset (or
  pipeline_dataset), callbacks, then at the last step choose, evaluate and results.
  """
  # A task whose stream splits by file (a streamed dataset) sets this and pipeline_dataset:
  # under a strategy each host then reads and decodes only its own shards.
  splits_by_file = False

  def __init__(self, config, output_dir, data_dir=None):
    self.config, self.output_dir, self.data_dir = config, output_dir, data_dir

  @property
  def steps(self):
    """The training steps of the whole run."""
    raise NotImplementedError

  def describe(self):
    """The run in progress lines."""
    return f'{self.config.model} on {self.config.dataset}, alpha={self.config.label_smoothing}'

  def prepare(self, strategy):
    """Work only a run that still trains needs (a teacher's outputs, a vocabulary); after the
    run's lock is taken, before build."""

  def build(self, jit_compile):
    """(model, trained): `trained` (compiled) holds `model`'s variables and is what fit runs;
    `model` is what is saved and evaluated."""
    raise NotImplementedError

  def train_dataset(self, start_step):
    """The training stream from start_step: a resumed run sees the batches an uninterrupted
    one would."""
    raise NotImplementedError

  def pipeline_dataset(self, start_step, context):
    """One input pipeline's share (tf.distribute.InputContext) of the stream from start_step,
    in per-replica batches; used when splits_by_file."""
    raise NotImplementedError

  def callbacks(self, model, chief, log):
    """The task's own Keras callbacks."""
    del model, chief, log
    return []

  def choose(self, model):
    """Loads the weights the run keeps if not its last; returns their record, or None."""
    del model

  def evaluate(self, model):
    """The metrics of results.json (writing whatever else the run keeps), or None."""
    del model

  def results(self):
    """Extra entries of results.json."""
    return {}

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


def fit_resumably(model, trained, task, options, callbacks=None):
  """Trains `trained` (whose variables include `model`'s) up to task.steps from the last
  checkpoint in task.output_dir; returns the step reached. Checkpoints, TensorBoard and progress
  go to the run directory (the chief's only); a non-finite loss raises TrainingDivergedError.
  SIGTERM or Ctrl-C saves a checkpoint where the callbacks next see a step and raises Stopped
  (a second Ctrl-C: at once). callbacks(chief) -> Keras callbacks; one that acts every N steps
  has the attribute `every` (resolve_steps_per_execution)."""
  config, output_dir, steps, log = task.config, task.output_dir, task.steps, options.log
  strategy = options.distribution()
  stop = min(steps, options.stop_after_steps or steps)
  chunk = min(options.checkpoint_every, stop)
  chief = run_files.is_chief(strategy)
  checkpoints = Checkpoints(model, trained.optimizer, output_dir, chief)
  start = checkpoints.restore(log)
  log(f'{task.describe()}: {steps} steps of {config.batch_size} ({model.count_params():,} '
      f'parameters, {strategy.num_replicas_in_sync} replica(s), {config.dtype_policy}); '
      f'starting at step {start}.', flush=True)
  log_dir = (os.path.join(output_dir, 'tensorboard') if chief
             else tempfile.mkdtemp(prefix='worker_tensorboard_'))
  steps_per_execution = options.steps_per_execution
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
      train_dataset = training_stream(task, strategy)
      tensorboard = keras.callbacks.TensorBoard(log_dir)
      with _StopSignals() as signals:
        stopper = _StopOnSignal(signals, checkpoints, steps, strategy, chunk, stop)
        fit_callbacks = [_Progress(checkpoints, stop, start, config, log,
                                   options.queued_seconds),
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


def training_stream(task, strategy):
  """start_step -> what fit reads: the task's stream, or under a distribution strategy and
  for a task whose stream splits by file, one pipeline per host through
  distribute_datasets_from_function (strategy.experimental_distribute_dataset would have every
  host read every example)."""
  if not task.splits_by_file or strategy is tf.distribute.get_strategy():
    return task.train_dataset
  return lambda start: strategy.distribute_datasets_from_function(
      lambda context: task.pipeline_dataset(start, context))


def run_task(task, options=None, callbacks=None):
  """The one training loop: claims task.output_dir for task.config, returns the results of a
  finished run without training, else takes the run's lock, prepares and builds the task,
  trains it resumably (fit_resumably) and, when it reaches its last step, saves the weights,
  evaluates and writes results.json (the chief only). options: RunOptions (default: the
  defaults); callbacks(chief) returns extra Keras callbacks. A non-finite loss raises
  TrainingDivergedError and writes no results."""
  options = options or RunOptions()
  strategy = options.distribution()
  chief = run_files.is_chief(strategy)
  config, output_dir = task.config, task.output_dir
  steps = task.steps  # for a classifier, the data's size: unreadable data fails before any write
  if chief:
    run_records.claim_output_dir(output_dir, config, task.data_dir)
  results_path = os.path.join(output_dir, 'results.json')
  if run_files.gfile.exists(results_path):
    return run_files.read_json(results_path)
  with run_lock.hold(output_dir, chief, options.log):  # one writer: a second copy refuses at once
    task.prepare(strategy)
    model, trained = build_under_policy(config, strategy,
                                        lambda: task.build(options.jit_compile))
    began = time.time()
    all_callbacks = lambda chief: ((callbacks(chief) if callbacks else []) +
                                   task.callbacks(model, chief, options.log))
    done = fit_resumably(model, trained, task, options, all_callbacks)
    if done < steps:
      return {'steps_trained': done, 'finished': False}
    results = {'config': run_records.config_to_json(config), 'steps_trained': done,
               'finished': True, **task.results(),
               'train_seconds_this_session': round(time.time() - began, 1)}
    if not chief:  # the chief evaluates and writes; the other workers only helped train
      return results
    # The weight average (if the optimizer keeps one) is what the run saves and evaluates.
    getattr(trained.optimizer, 'swap_average', lambda: None)()
    kept = task.choose(model)
    if kept is not None:
      results['kept_weights'] = kept
    # The weights alone: the optimizer's slots (momentum, the average) live in checkpoints/.
    keras.saving.save_weights(model, os.path.join(output_dir, 'model.weights.h5'),
                              objects_to_skip=[trained.optimizer])
    metrics = task.evaluate(model)
    if metrics is not None:
      results['metrics'] = metrics
    run_files.write_json(results_path, results)
    return results
