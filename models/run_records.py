"""A run directory's record of its run: config.json (which run it is, so a rerun resumes it and
a different run is refused) and results.json (whether it finished)."""
import dataclasses
import json
import os

from data.run_directory import run_files
from data.run_directory.run_files import RunDirError
from models import recipes


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


def read_run_config(run_dir):
  """(config, data_dir) recorded in a run directory's config.json."""
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
