"""The results contract: each paper section writes one JSON holding its kind, the schema version,
its provenance and its figures beside its rows and claims; `experiments.report` finds every
result below a folder (through gfile) and formats it by kind.

A result written before the contract (no "kind") is refused with the migration command, so the
report never guesses at an old layout.
"""
import dataclasses
import datetime
import os
import platform
import shlex
import sys

import keras
import tensorflow as tf

from data.run_directory import run_files

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Kind:
  """A section's result: its name (the JSON's "kind"), the file the section writes it to and
  the figures it draws beside it. The section that writes it declares it; experiments.report
  lists them in the order it shows the sections."""
  name: str
  filename: str
  figures: tuple = ()
MIGRATE = 'python -m experiments.report --migrate --results_dir=<folder>'


def cpu_model():
  """The CPU's model name and family from /proc/cpuinfo, as lscpu shows them (Zen 4 and Zen 5
  are both "AMD EPYC": the family tells)."""
  fields = {}
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    return platform.processor() or platform.machine()
  return f'{fields.get("model name", platform.machine())}, family {fields.get("cpu family", "?")}'


def command_line(argv=None):
  """The command as a user types it again: `python -m package.module flags...`."""
  argv = list(sys.argv if argv is None else argv)
  spec = getattr(sys.modules.get('__main__'), '__spec__', None)
  program = f'python -m {spec.name}' if spec else f'python {argv[0]}'
  return ' '.join([program] + [shlex.quote(a) for a in argv[1:]])


def provenance(seeds, data, wall_seconds, command=None):
  """What a reader needs to trust or redo a result. data: {dataset: 'official' | 'stand-in' |
  'unverified'} (data.sources.identify); wall_seconds: this command's wall time (finished runs
  it reused took their own, recorded in their results.json)."""
  return {'command': command or command_line(), 'cpu': cpu_model(),
          'seeds': sorted(seeds), 'data': data, 'wall_seconds': round(wall_seconds, 1),
          'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
          'software': {'tensorflow': tf.__version__, 'keras': keras.__version__}}


def _figures(kind, output_dir):
  """The kind's figures that exist in output_dir (the report shows them beside the table)."""
  return [f for f in kind.figures if run_files.gfile.exists(os.path.join(output_dir, f))]


def write(output_dir, kind, result, provenance_record):
  """Writes result (a dict of rows, summary, claims) as the section result of `kind` (a Kind);
  write it after the section's figures, so it lists them."""
  if not isinstance(kind, Kind):
    raise ValueError(f'unknown result kind {kind!r}; a section declares its Kind.')
  run_files.make_dir(output_dir)
  path = os.path.join(output_dir, kind.filename)
  run_files.write_json(path, dict(result, kind=kind.name, schema_version=SCHEMA_VERSION,
                                  provenance=provenance_record, figures=_figures(kind, output_dir)))
  return path


def read(folder, kind):
  """The result of `kind` (a Kind) written in `folder`, checked against the contract."""
  path = os.path.join(folder, kind.filename)
  result = run_files.read_json(path, fix='rerun the section binary that wrote it '
                               '(results/README.md gives each command)')
  _check(path, result, kind.name)
  return result


def read_all(results_dir, kinds):
  """[(kind name, folder relative to results_dir, result)] of every section result of these
  kinds (Kinds) below results_dir, in the order of `kinds`, folders sorted."""
  of_file = {kind.filename: kind for kind in kinds}
  found = {kind.name: [] for kind in kinds}
  for folder, _, files in run_files.gfile.walk(results_dir):
    for filename in set(files) & set(of_file):
      kind = of_file[filename]
      found[kind.name].append((os.path.relpath(folder, results_dir), read(folder, kind)))
  return [(kind.name, where, result) for kind in kinds
          for where, result in sorted(found[kind.name], key=lambda found: found[0])]


def _check(path, result, kind):
  if not isinstance(result, dict) or 'kind' not in result:
    raise run_files.RunDirError(f'{path} predates the results contract (no "kind"); migrate '
                                f'its folder once: {MIGRATE}.')
  if result['kind'] != kind or result.get('schema_version') != SCHEMA_VERSION:
    raise run_files.RunDirError(
        f'{path} is a {result["kind"]!r} result of schema {result.get("schema_version")}, '
        f'not {kind!r} of schema {SCHEMA_VERSION}; rerun the section binary that wrote it.')


def migrate(results_dir, kinds, upgrades=None):
  """Adds kind, schema version, its figures and a provenance that says what was not recorded
  to every pre-contract result of these kinds (Kinds) below results_dir; upgrades: {kind name:
  function} bringing an old layout of that kind to the current one. Returns the paths
  migrated."""
  of_file = {kind.filename: kind for kind in kinds}
  migrated = []
  for folder, _, files in run_files.gfile.walk(results_dir):
    for filename in sorted(set(files) & set(of_file)):
      path = os.path.join(folder, filename)
      result = run_files.read_json(path)
      if 'kind' in result:
        continue
      kind = of_file[filename]
      result = (upgrades or {}).get(kind.name, lambda r: r)(result)
      record = {'recorded': False, 'note': 'written before the results contract; the command, '
                'CPU, seeds and wall time are in results/README.md and the NOTE.md beside it'}
      run_files.write_json(path, dict(result, kind=kind.name, schema_version=SCHEMA_VERSION,
                                      provenance=record, figures=_figures(kind, folder)))
      migrated.append(path)
  return migrated
