"""Flags and start-up shared by the binaries: recipe overrides, strategy, one-line user errors."""
import dataclasses
import os
import signal
import sys
import time
import typing

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

from absl import app  # pylint: disable=g-import-not-at-top  (after the environment above)
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from data import DataError, sources  # pylint: disable=g-import-not-at-top
from data.run_directory import section_results  # pylint: disable=g-import-not-at-top
from data.run_directory.run_files import RunDirError  # pylint: disable=g-import-not-at-top
from models import recipes, run_records, strategies, trainer  # pylint: disable=g-import-not-at-top
from models.trainer import Stopped, TrainingDivergedError  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
STARTED = time.time()  # the provenance's wall time counts from here


def define_data_flags():
  flags.DEFINE_string('data_dir', sources.DEFAULT_DATA_DIR,
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
  flags.DEFINE_boolean('jit_compile', False, 'XLA-compile the train step; --strategy=default '
                       'only (Keras fails with it across replicas, keras-team/keras#19005; '
                       'TPUStrategy compiles with XLA anyway). Never faster on CPU here.')
  flags.register_multi_flags_validator(['jit_compile', 'strategy'], _check_jit_compile)
  flags.DEFINE_integer('checkpoint_every', 1000, 'Checkpoint and log every N steps.',
                       lower_bound=1)
  flags.DEFINE_integer('steps_per_execution', 0, 'Training steps per call into the compiled '
                       'step (fewer host round-trips: faster for small models and on TPUs); '
                       'must divide --checkpoint_every and the steps trained. 0: 10, or the '
                       'largest divisor of 10 that divides them and every record period.',
                       lower_bound=0)
  flags.DEFINE_integer('stop_after_steps', None, 'Stop every run at this step without '
                       'evaluating, as a kill would (for time-boxed jobs); rerun to continue.',
                       lower_bound=1)


def _check_jit_compile(values):
  """Refused rather than ignored: a command (or a benchmark's record) saying XLA must not run
  without it, and the refusal comes at flag parsing, before any run starts."""
  if values['jit_compile'] and values['strategy'] != 'default':
    why = ('TPUStrategy compiles every step with XLA already' if values['strategy'] == 'tpu'
           else "Keras's XLA train step fails across replicas (keras-team/keras#19005)")
    raise flags.ValidationError(f'--jit_compile does not apply under --strategy='
                                f'{values["strategy"]}: {why}; drop --jit_compile.')
  return True


def _calling_module():
  """The module that called the define_* helper calling this, named as absl names it (the
  script path for __main__), so --helpshort lists the flag under that binary."""
  name = sys._getframe(2).f_globals['__name__']  # pylint: disable=protected-access
  return sys.argv[0] if name == '__main__' else name


def define_section_flags(output_help, run_dirs_help=None, alphas=None,
                         alphas_help='Label-smoothing values.'):
  """The flags the section binaries share, defined here once: --output_dir (required) and,
  where a section has them, --run_dirs (finished runs reused instead of training) and --alphas
  (label smoothing in [0, 1)); each binary gives its own help text and defaults, and --helpshort
  lists them under the binary."""
  caller = _calling_module()
  flags.DEFINE_string('output_dir', None, output_help, module_name=caller)
  flags.mark_flag_as_required('output_dir')
  if run_dirs_help:
    flags.DEFINE_list('run_dirs', None, run_dirs_help, module_name=caller)
  if alphas is not None:
    define_number_list('alphas', alphas, alphas_help, lower=0.0, upper=1.0, module_name=caller)


def define_number_list(name, default, help_text, kind=float, lower=None, upper=None,
                       flag_values=FLAGS, module_name=None):
  """A comma-separated list flag whose every entry must be a `kind` in [lower, upper)."""
  module_name = module_name or _calling_module()
  flags.DEFINE_list(name, default, help_text, flag_values=flag_values, module_name=module_name)

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
                           f'{bounds}, e.g. --{name}={",".join(default or ["0.5"])}.',
                           flag_values=flag_values)


def define_config_flags(config_type, registry, exclude=(), flag_values=FLAGS, **defaults):
  """One flag per field of a config dataclass (but `exclude`), typed from its annotation, with
  the help text beside each field and enums from its registries (models.recipes.choices). A
  flag left unset is None, so the recipe in `registry` decides, unless `defaults` gives the
  flag a default."""
  hints = typing.get_type_hints(config_type)
  choices = recipes.choices(config_type)
  for field in dataclasses.fields(config_type):
    name = field.name
    if name in exclude:
      continue
    default = defaults.get(name)
    by_recipe = any(name in r for r in registry.values()) and name != 'model'
    help_text = field.metadata['help'] + (' (recipe default)' if by_recipe else '')
    kind = hints[name]
    if typing.get_origin(kind) is typing.Union:  # Optional[X]: X
      kind = next(t for t in typing.get_args(kind) if t is not type(None))
    if name in choices:
      flags.DEFINE_enum(name, default, list(choices[name]), help_text, flag_values=flag_values)
    elif typing.get_origin(kind) is tuple:  # lr_boundaries, fractions of the schedule
      define_number_list(name, default, help_text, lower=0.0, upper=1.0, flag_values=flag_values)
    else:
      define = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                float: flags.DEFINE_float}.get(kind, flags.DEFINE_string)
      define(name, default, help_text, flag_values=flag_values)


def config_overrides(config_type, exclude=(), flag_values=FLAGS, **fixed):
  """The fields of config_type set by their generated flags (unset: None), plus `fixed` ones."""
  overrides = {}
  for field in dataclasses.fields(config_type):
    if field.name not in ('model', *exclude) and field.name in flag_values:
      value = flag_values[field.name].value
      if isinstance(value, list):  # a number list: the config holds a tuple
        value = tuple(float(v) for v in value)
      overrides[field.name] = value
  overrides.update(fixed)
  return overrides


_STUDENT_FIELDS = ('teacher_dir', 'distillation', 'distill_beta', 'distill_temperature',
                   'student_temperature', 'teacher_outputs')


def define_recipe_flags(default_model=None):
  """Overrides of the paper recipe (models.recipes.TrainConfig); the distillation binaries
  define the student's settings themselves."""
  define_config_flags(recipes.TrainConfig, recipes.RECIPES, exclude=_STUDENT_FIELDS,
                      model=default_model, label_smoothing=0.0,
                      label_smoothing_convention='uniform', seed=0)


def recipe_overrides(**fixed):
  """The recipe fields set on the command line, plus `fixed` ones."""
  return config_overrides(recipes.TrainConfig, exclude=_STUDENT_FIELDS, **fixed)


def define_training_flags(default_model=None):
  """Everything a binary that trains needs: recipe overrides, data and runtime flags."""
  define_recipe_flags(default_model)
  define_data_flags()
  define_runtime_flags()


def make_strategy():
  strategies.configure_cpu_devices(FLAGS.num_cpu_devices)
  return strategies.build_strategy(FLAGS.strategy, FLAGS.tpu)


def run_options():
  """The runtime flags as the one models.trainer.RunOptions every run of this command gets."""
  return trainer.RunOptions(strategy=make_strategy(), checkpoint_every=FLAGS.checkpoint_every,
                            stop_after_steps=FLAGS.stop_after_steps,
                            steps_per_execution=FLAGS.steps_per_execution,
                            jit_compile=FLAGS.jit_compile)


def provenance(run_dirs, data_dir=None):
  """The provenance (data.run_directory.section_results) of a result made from these finished
  runs: their seeds, what their data is (official, stand-in, unverified) and this command's wall
  time."""
  seeds, identities = set(), {}
  for run_dir in run_dirs:
    config, stored_data_dir = run_records.read_run_config(run_dir)
    seeds.add(config.seed)
    identities[config.dataset] = sources.identify(config.dataset, data_dir or stored_data_dir)
  return section_results.provenance(seeds, identities, time.time() - STARTED)


def run(main):
  """app.run(main), with user mistakes reported as one line instead of a traceback, and
  SIGTERM or Ctrl-C ending it with one line on how to resume (models.trainer saves a
  checkpoint first when the signal comes during training)."""
  def guarded(argv):
    logging.set_verbosity(logging.WARNING)  # keep tf.distribute's INFO chatter out of progress
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
      signal.signal(signal.SIGTERM, _terminated)  # by default it ends the process without a word
    try:
      main(argv)
    except (DataError, RunDirError, TrainingDivergedError, ValueError) as e:
      _fail(str(e))
    except OSError as e:  # a path a user gave: missing, a file for a folder, no permission
      _fail(f'{e.strerror or e}: {e.filename or ""}; check the paths given in the flags.')
    except tf.errors.OpError as e:  # the same through TensorFlow's file systems (gs://)
      _fail(f'{e.message.splitlines()[0]}; check the paths given in the flags.')
    except Stopped as e:
      _stop(str(e), e.exit_code)
    except KeyboardInterrupt:
      _stop(_OUTSIDE_TRAINING.format(signal='Ctrl-C (SIGINT)'), 128 + signal.SIGINT)
  app.run(guarded)


# A signal outside training: while building, evaluating or writing results (atomically).
_OUTSIDE_TRAINING = ('stopped by {signal} outside training (finished work is kept); rerun the '
                     'same command to resume from the last checkpoint.')


def _terminated(signum, frame):
  del frame
  raise Stopped(_OUTSIDE_TRAINING.format(signal='SIGTERM'), signum)


def define_num_seeds(default, help_text):
  """--num_seeds, this project's one way to ask for several seeds: the runs take seeds --seed,
  --seed + 1, ... (seeds()); a count of other things seeded is another --num_* flag, and a
  single seed of something other than a run's initialization an --*_seed flag."""
  flags.DEFINE_integer('num_seeds', default, f'Seeds --seed, --seed + 1, ...: {help_text}',
                       lower_bound=1, module_name=_calling_module())


def seeds():
  """The seeds of --seed and --num_seeds."""
  return list(range(FLAGS.seed, FLAGS.seed + FLAGS.num_seeds))


def define_dataset_rows(rows, what):
  """--dataset must name one of `rows` (dataset -> the defaults of the flags it sets, which
  main applies with apply_preset): how a section binary chooses among its settings."""
  flags.register_validator('dataset', lambda name: name in rows,
                           f'--dataset must be one of {", ".join(rows)} ({what}).')


def apply_preset(values):
  """Sets each flag of `values` (name -> value) that the command line did not set: how a binary's
  --preset or --dataset chooses its variant's defaults."""
  for name, value in values.items():
    if not FLAGS[name].present:
      FLAGS[name].value = value


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def _stop(message, exit_code):
  """One line and the status of a process ended by the signal (128 + its number), so a job
  system or a retry loop counts the run as unfinished."""
  print(message, file=sys.stderr)
  sys.exit(exit_code)
