"""The image classifier's task on the one training loop (models.trainer), and its evaluation.

ClassifierTask trains a TrainConfig's classifier with the (smoothed) cross-entropy on its
labels through the recipe's optimizer and augmented stream, and evaluates it on the validation
and test splits (logits.npz and the metrics of results.json). A distillation student is this
task with another loss and model wrapper (distillation.StudentTask).
"""
import functools
import os
import weakref

import keras
import numpy as np
import tensorflow as tf

import calibration
import data
from data.run_directory import run_files
from data.run_directory.checkpoints import Checkpoints
from data.run_directory.run_files import RunDirError
from models import build_model
from models import recipes
from models import run_records
from models import selection
from models import trainer
from models.losses import SmoothedCrossEntropy
from models.optimizers import LinearWarmup, MomentumSGD


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


def train_dataset(config, data_dir, start_step, total_steps, **kwargs):
  """The recipe's augmented training stream, continuing at `start_step` (endless, or the run's
  remaining steps of its `total_steps` for a streamed dataset); with an auxiliary head, labels
  for both outputs."""
  if data.DATASETS[config.dataset].streamed:
    kwargs.setdefault('num_steps', total_steps - start_step)
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
  return build_model(config, data.num_classes(config.dataset),
                     input_shape(config))


def input_shape(config):
  """The model's input: its chain's output shape, or image_size square views."""
  shape = data.preprocessing.OUTPUT_SHAPES[config.preprocessing]
  return (config.image_size, config.image_size, shape[2]) if config.image_size else shape


def load_trained(run_dir):
  """(model, config, data_dir it was trained with) of a finished classifier run."""
  config, data_dir = run_records.read_run_config(run_dir)
  weights = os.path.join(run_dir, 'model.weights.h5')
  if not run_files.gfile.exists(weights):
    raise RunDirError(f'{run_dir} has not finished (no model.weights.h5); train it to the end '
                      'first.')
  model = build_for(config)
  run_records.load_weights(model, weights)
  return model, config, data_dir


def load_checkpoint(run_dir, log=print):
  """(model, config, data_dir it was trained with, step) from a run's latest readable checkpoint,
  finished or not: how a long run is evaluated before its end. The weight average (ema_decay)
  is swapped in, as the finished run saves it; a run that selects its weights by validation
  accuracy is read at the checkpoint's step instead."""
  config, data_dir = run_records.read_run_config(run_dir)

  def build():
    model = build_for(config)
    compile_model(model, config, steps=1)  # the optimizer's slots, so the checkpoint reads whole
    return model
  model = trainer.build_under_policy(config, tf.distribute.get_strategy(), build)
  step = Checkpoints(model, model.optimizer, run_dir).restore(log)
  if not step:
    raise RunDirError(f'{run_dir} has no checkpoint yet; evaluate it after its first '
                      'checkpoint (--checkpoint_every steps).')
  getattr(model.optimizer, 'swap_average', lambda: None)()
  return model, config, data_dir, step


def split_dataset(config, data_dir, split, batch_size=1000):
  """One ordered pass over a split through the config's evaluation chain."""
  return data.build_dataset(config.dataset, split, batch_size=batch_size, training=False,
                            data_dir=data_dir, preprocessing_name=config.preprocessing,
                            image_size=config.image_size, validation_size=config.validation_size)


def split_metrics(model, config, data_dir, split, eval_batch_size=1000):
  """(metrics of results.json, logits, labels) of the model on one split."""
  logits, labels = predict_logits(model, split_dataset(config, data_dir, split, eval_batch_size))
  metrics = calibration.evaluate_logits(logits, labels)
  metrics['loss'] = float(np.mean(build_loss(config).call(labels, logits)))
  return metrics, logits, labels


def evaluate(model, config, data_dir, output_dir, eval_batch_size=1000):
  """Logits and metrics on the validation (if non-empty) and test splits."""
  metrics, logits = {}, {}
  for split in ('validation', 'test'):
    if split == 'validation' and config.validation_size == 0:
      continue
    metrics[split], logits[split], logits[split + '_labels'] = split_metrics(
        model, config, data_dir, split, eval_batch_size)
  run_files.write_npz(os.path.join(output_dir, 'logits.npz'), **logits)
  return metrics


class ClassifierTask(trainer.Task):
  """A classifier trained with the (smoothed) cross-entropy on its own labels."""

  @functools.cached_property
  def steps(self):
    num_train = data.num_examples(self.config.dataset, 'train', self.data_dir,
                                  self.config.validation_size)
    return recipes.total_steps(self.config, num_train)

  @property
  def splits_by_file(self):
    return data.DATASETS[self.config.dataset].streamed

  def trained_model(self, model):
    """The model fit trains; it shares `model`'s variables (a student joins its teacher)."""
    return model

  def loss(self):
    """fit's loss; None: the (smoothed) cross-entropy on the labels, with accuracy tracked."""
    return None

  def build(self, jit_compile):
    model = build_for(self.config)
    trained = self.trained_model(model)
    compile_model(trained, self.config, self.steps, jit_compile, loss=self.loss(),
                  averaged=model)
    return model, trained

  def train_dataset(self, start_step):
    return train_dataset(self.config, self.data_dir, start_step, self.steps)

  def pipeline_dataset(self, start_step, context):
    return train_dataset(self.config, self.data_dir, start_step, self.steps,
                         input_context=context)

  def callbacks(self, model, chief, log):
    if not self.config.select_by_validation:
      return []
    return [selection.BestOnValidation(
        model, lambda: predict_logits(model, split_dataset(self.config, self.data_dir,
                                                           'validation')),
        self.output_dir, chief, log)]

  def choose(self, model):
    """With select_by_validation, loads the weights kept by validation accuracy
    (models.selection); returns their record."""
    if not self.config.select_by_validation:
      return None
    path, record = selection.best_weights(self.output_dir)
    if path is None:
      raise RunDirError(f'{self.output_dir} selects its weights by validation accuracy but '
                        f'holds no {selection.BEST_WEIGHTS}; delete the run directory and '
                        'train it again.')
    run_records.load_weights(model, path)
    return record

  def evaluate(self, model):
    return evaluate(model, self.config, self.data_dir, self.output_dir)


def train_and_evaluate(config, output_dir, *, data_dir=None, options=None, callbacks=None):
  """Trains the classifier `config` into `output_dir` with the one loop (resuming, or returning
  a finished run's results) and evaluates it on the validation and test splits. options:
  trainer.RunOptions; callbacks(chief) -> extra Keras callbacks. A student (teacher_dir set)
  trains with distillation.train_student."""
  if config.teacher_dir:
    raise ValueError('a student run (teacher_dir set) trains with distillation.train_student.')
  return trainer.run_task(ClassifierTask(config, output_dir, data_dir), options, callbacks)


def run_logits(run_dir, data_dir=None, log=print):
  """(config, {'validation': (logits, labels), 'test': (logits, labels)}) of a finished run.

  Reads logits.npz, or recomputes it from model.weights.h5 when it is missing or unreadable.
  """
  path = os.path.join(run_dir, 'logits.npz')
  config, stored_data_dir = run_records.read_run_config(run_dir)
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
