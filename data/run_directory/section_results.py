"""The results contract: each paper section writes one JSON holding its kind, the schema version,
its provenance and its figures beside its rows and claims; `experiments.report` finds every
result below a folder (through gfile) and formats it by kind.

A result written before the contract (no "kind") is refused with the migration command, so the
report never guesses at an old layout.
"""
import datetime
import os
import platform
import shlex
import sys

import keras
import tensorflow as tf

from data.run_directory import run_files

SCHEMA_VERSION = 1

# kind: (the file a section writes it to, the figures the section draws beside it), in the
# order the report shows the sections.
KINDS = {
    'accuracy': ('table.json', ()),
    'penultimate': ('penultimate_stats.json', ('penultimate.png',)),
    'calibration': ('calibration.json', ('reliability.png',)),
    'distillation_mnist': ('distill_mnist.json', ()),
    'distillation_cifar10': ('points.json', ('figure5.png',)),
    'mutual_information': ('mutual_information_points.json', ('mutual_information.png',)),
    'translation': ('translation.json', ('figure4.png', 'reliability_translation.png')),
}
FILENAMES = {kind: filename for kind, (filename, _) in KINDS.items()}
_KIND_OF_FILE = {filename: kind for kind, filename in FILENAMES.items()}
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
  return [f for f in KINDS[kind][1] if run_files.gfile.exists(os.path.join(output_dir, f))]


def write(output_dir, kind, result, provenance_record):
  """Writes result (a dict of rows, summary, claims) as the section result of `kind`; write it
  after the section's figures, so it lists them."""
  if kind not in KINDS:
    raise ValueError(f'unknown result kind {kind!r}; one of {", ".join(KINDS)}.')
  run_files.make_dir(output_dir)
  path = os.path.join(output_dir, FILENAMES[kind])
  run_files.write_json(path, dict(result, kind=kind, schema_version=SCHEMA_VERSION,
                                  provenance=provenance_record, figures=_figures(kind, output_dir)))
  return path


def read_all(results_dir, kinds=tuple(KINDS)):
  """[(kind, folder relative to results_dir, result)] of every section result of these kinds
  below results_dir, sections in KINDS order, folders sorted."""
  found = {kind: [] for kind in kinds}
  wanted = {FILENAMES[kind] for kind in kinds}
  for folder, _, files in run_files.gfile.walk(results_dir):
    for filename in set(files) & wanted:
      path = os.path.join(folder, filename)
      result = run_files.read_json(path, fix='rerun the section binary that wrote it '
                                   '(results/README.md gives each command)')
      _check(path, result, _KIND_OF_FILE[filename])
      found[_KIND_OF_FILE[filename]].append((os.path.relpath(folder, results_dir), result))
  return [(kind, where, result) for kind in KINDS if kind in kinds
          for where, result in sorted(found[kind], key=lambda found: found[0])]


def _check(path, result, kind):
  if not isinstance(result, dict) or 'kind' not in result:
    raise run_files.RunDirError(f'{path} predates the results contract (no "kind"); migrate '
                                f'its folder once: {MIGRATE}.')
  if result['kind'] != kind or result.get('schema_version') != SCHEMA_VERSION:
    raise run_files.RunDirError(
        f'{path} is a {result["kind"]!r} result of schema {result.get("schema_version")}, '
        f'not {kind!r} of schema {SCHEMA_VERSION}; rerun the section binary that wrote it.')


def migrate(results_dir, upgrades=None):
  """Adds kind, schema version, its figures and a provenance that says what was not recorded
  to every pre-contract result below results_dir; upgrades: {kind: function} bringing an old
  layout of that kind to the current one. Returns the paths migrated."""
  migrated = []
  for folder, _, files in run_files.gfile.walk(results_dir):
    for filename in sorted(set(files) & set(_KIND_OF_FILE)):
      path = os.path.join(folder, filename)
      result = run_files.read_json(path)
      if 'kind' in result:
        continue
      kind = _KIND_OF_FILE[filename]
      result = (upgrades or {}).get(kind, lambda r: r)(result)
      record = {'recorded': False, 'note': 'written before the results contract; the command, '
                'CPU, seeds and wall time are in results/README.md and the NOTE.md beside it'}
      run_files.write_json(path, dict(result, kind=kind, schema_version=SCHEMA_VERSION,
                                      provenance=record, figures=_figures(kind, folder)))
      migrated.append(path)
  return migrated
