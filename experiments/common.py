"""Flags and start-up shared by the binaries: recipe overrides, strategy, one-line user errors."""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

FLAGS = flags.FLAGS


def define_data_flags():
  from data.sources import DEFAULT_DATA_DIR  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('data_dir', DEFAULT_DATA_DIR,
                      'Folder with the raw dataset files (mnist/, cifar-10-batches-bin/, ...); '
                      'tfds is tried when they are not there. Reused runs (--run_dirs) read '
                      'the folder they were trained with unless this is given.')
  flags.DEFINE_boolean('download', False, 'Let tfds download and prepare missing datasets.')


def data_dir_for_reused_runs():
  """--data_dir when typed, else None: each reused run then reads the data it was trained on
  (its config.json), not the default folder."""
  return FLAGS.data_dir if FLAGS['data_dir'].present else None


def define_runtime_flags():
  flags.DEFINE_enum('strategy', 'default', ['default', 'mirrored', 'multi_worker', 'tpu'],
                    'tf.distribute strategy.')
  flags.DEFINE_string('tpu', None, 'TPU name or address for --strategy=tpu.')
  flags.DEFINE_integer('num_cpu_devices', 1, 'Split the CPU into this many logical devices '
                       '(for testing --strategy=mirrored without accelerators).', lower_bound=1)
  flags.DEFINE_boolean('jit_compile', False, 'XLA-compile the train step (fails under '
                       'MirroredStrategy on logical CPU devices; never faster on CPU here).')
  flags.DEFINE_integer('checkpoint_every', 1000, 'Checkpoint and log every N steps.',
                       lower_bound=1)
  flags.DEFINE_integer('stop_after_steps', None, 'Stop every run at this step without '
                       'evaluating, as a kill would (for time-boxed jobs); rerun to continue.',
                       lower_bound=1)


def define_number_list(name, default, help_text, kind=float, lower=None, upper=None):
  """A comma-separated list flag whose every entry must be a `kind` in [lower, upper)."""
  flags.DEFINE_list(name, default, help_text)

  def valid(values):
    try:
      numbers = [kind(v) for v in values or []]
    except ValueError:
      return False
    return all((lower is None or x >= lower) and (upper is None or x < upper) for x in numbers)

  what = 'integers' if kind is int else 'numbers'
  bounds = f' in [{lower}, {upper})' if upper is not None else (
      f' >= {lower}' if lower is not None else '')
  flags.register_validator(name, valid, f'--{name} must be a comma-separated list of {what}'
                           f'{bounds}, e.g. --{name}={",".join(default or ["0.5"])}.')


def define_recipe_flags(default_model=None):
  """Overrides of the paper recipe; None (unset) keeps the recipe's value."""
  flags.DEFINE_enum('model', default_model, ['fc', 'alexnet', 'resnet56'], 'Architecture.')
  flags.DEFINE_string('dataset', None, 'mnist, fashion_mnist, emnist, cifar10 or cifar100 '
                      '(default: the recipe\'s).')
  flags.DEFINE_float('label_smoothing', 0.0, 'alpha in [0, 1).')
  flags.DEFINE_enum('label_smoothing_convention', 'uniform', ['uniform', 't2t'],
                    'uniform: y(1-a) + a/K (paper); t2t: 1-a on true class, a/(K-1) elsewhere.')
  flags.DEFINE_integer('seed', 0, 'Seed for initialization, data order and augmentation.')
  flags.DEFINE_integer('batch_size', None, 'Global batch size (recipe default).')
  flags.DEFINE_integer('train_steps', None, 'Training steps (recipe default).')
  flags.DEFINE_float('train_epochs', None, 'Training epochs over the train split; used when '
                     '--train_steps is unset.')
  flags.DEFINE_float('learning_rate', None, 'Base learning rate (recipe default).')
  flags.DEFINE_enum('lr_schedule', None, ['piecewise', 'linear', 'constant'], 'LR schedule.')
  define_number_list('lr_boundaries', None, 'Piecewise boundaries as fractions of train_steps.',
                     lower=0.0, upper=1.0)
  flags.DEFINE_float('lr_decay_factor', None, 'Piecewise decay factor.')
  flags.DEFINE_float('momentum', None, 'Momentum (0: plain SGD).')
  flags.DEFINE_float('dampening', None, 'Momentum dampening (0.9: the MNIST gradient smoothing).')
  flags.DEFINE_boolean('nesterov', None, 'Nesterov momentum.')
  flags.DEFINE_float('last_layer_lr_multiplier', None, 'LR multiplier of the logits layer.')
  flags.DEFINE_float('loss_multiplier', None, 'Cross-entropy multiplier (paper: 3 for CIFAR).')
  flags.DEFINE_float('weight_decay', None, 'L2 coefficient wd in 0.5 * wd * ||w||^2.')
  flags.DEFINE_float('clip_norm', None, 'Global-norm gradient clipping (0: off).')
  flags.DEFINE_enum('preprocessing', None, ['alexnet_cifar', 'resnet_cifar', 'mnist_shift',
                                            'mnist'], 'Augmentation chain.')
  flags.DEFINE_integer('width', None, 'fc hidden width (1200 teacher, 800 student).')
  flags.DEFINE_float('dropout', None, 'fc dropout rate.')
  flags.DEFINE_float('init_variance', None, 'fc Gaussian init variance (default 0.0009, i.e. '
                     'std 0.03: the reading that reproduces the paper; 0.03 is the literal '
                     'reading of its text, see models/recipes.py).')
  flags.DEFINE_enum('dtype_policy', None, ['float32', 'mixed_bfloat16'], 'Keras dtype policy '
                    '(default float32; mixed_bfloat16 as on TPUs: losses, softmax, optimizer '
                    'variables, LRN and evaluation stay float32).')
  flags.DEFINE_integer('validation_size', None, 'Examples held out of the official training '
                       'set as validation (default: 10000 CIFAR, 5000 MNIST-family).')
  flags.register_validator('label_smoothing', lambda a: 0.0 <= a < 1.0,
                           '--label_smoothing must be in [0, 1).')


def recipe_overrides(**fixed):
  """The recipe fields set on the command line, plus `fixed` ones."""
  names = ['dataset', 'label_smoothing', 'label_smoothing_convention', 'seed', 'batch_size',
           'train_steps', 'train_epochs', 'learning_rate', 'lr_schedule', 'lr_decay_factor',
           'momentum', 'dampening', 'nesterov', 'last_layer_lr_multiplier', 'loss_multiplier',
           'weight_decay', 'clip_norm', 'preprocessing', 'width', 'dropout', 'init_variance',
           'validation_size', 'dtype_policy']
  overrides = {n: FLAGS[n].value for n in names}
  if FLAGS.lr_boundaries is not None:
    overrides['lr_boundaries'] = tuple(float(b) for b in FLAGS.lr_boundaries)
  overrides.update(fixed)
  return overrides


def define_training_flags(default_model=None):
  """Everything a binary that trains needs: recipe overrides, data and runtime flags."""
  define_recipe_flags(default_model)
  define_data_flags()
  define_runtime_flags()


def make_strategy():
  from models import training  # pylint: disable=g-import-not-at-top
  training.configure_cpu_devices(FLAGS.num_cpu_devices)
  return training.build_strategy(FLAGS.strategy, FLAGS.tpu)


def train_kwargs():
  """Keyword arguments of models.training.train_and_evaluate set by the runtime flags."""
  return dict(data_dir=FLAGS.data_dir, strategy=make_strategy(), jit_compile=FLAGS.jit_compile,
              checkpoint_every=FLAGS.checkpoint_every, stop_after_steps=FLAGS.stop_after_steps)


def run(main):
  """app.run(main), with user mistakes reported as one line instead of a traceback."""
  def guarded(argv):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from data import DataError  # pylint: disable=g-import-not-at-top
    from models.training import RunDirError, TrainingDivergedError  # pylint: disable=g-import-not-at-top
    logging.set_verbosity(logging.WARNING)  # keep tf.distribute's INFO chatter out of progress
    try:
      main(argv)
    except (DataError, RunDirError, TrainingDivergedError, ValueError) as e:
      _fail(str(e))
    except OSError as e:  # a path a user gave: missing, a file for a folder, no permission
      _fail(f'{e.strerror or e}: {e.filename or ""}; check the paths given in the flags.')
    except tf.errors.OpError as e:  # the same through TensorFlow's file systems (gs://)
      _fail(f'{e.message.splitlines()[0]}; check the paths given in the flags.')
  app.run(guarded)


def run_with_defaults(main, **defaults):
  """run(main) for a thin per-dataset binary that sets the shared body's flag defaults."""
  for name, value in defaults.items():
    FLAGS.set_default(name, value)
  run(main)


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)
