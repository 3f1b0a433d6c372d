"""The report: well-formed tables beside the references, provenance notes carried along."""
import json
import os

import numpy as np
import pytest

from calibration import table as calibration_table
from data import sources
from data.run_directory import run_files, section_results
from experiments import report
from tests.conftest import run_binary, write_cifar10_bin

PROVENANCE = {'command': 'python -m experiments.accuracy_table --model=fc', 'cpu': 'AMD EPYC, '
              'family 26', 'seeds': [0, 1], 'data': {'mnist': 'official'}, 'wall_seconds': 90.0,
              'date': '2026-11-30T12:00:00+00:00', 'software': {}}


def _write(path, value, kind=None):
  """A file as a section wrote it: under the results contract when `kind` is given."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if kind:
    value = dict(value, kind=kind, schema_version=section_results.SCHEMA_VERSION,
                 provenance=PROVENANCE, figures=[])
  with open(path, 'w') as f:
    f.write(value if isinstance(value, str) else json.dumps(value))


def _tables(markdown):
  """Each markdown table as a list of its rows' cells."""
  tables, current = [], []
  for line in markdown.splitlines() + ['']:
    if line.startswith('|'):
      current.append([c.strip() for c in line.strip().strip('|').split('|')])
    elif current:
      tables.append(current)
      current = []
  return tables


def test_sections_show_references_notes_and_well_formed_tables(tmp_path):
  run = tmp_path / 'cifar_standin'
  _write(str(run / 'NOTE.md'), 'Stand-in data, 30,000 of 390,000 steps.')
  _write(str(run / 'table.json'), {
      'model': 'alexnet', 'dataset': 'cifar10', 'split': 'validation',
      'num_bins': 20, 'rows': [{'alpha': 0.0, 'num_seeds': 1, 'steps': 30000, 'accuracy': 80.02,
                                'accuracy_std': 0.0, 'nll': 0.5786, 'ece': 0.0134}]}, 'accuracy')
  # No published ECE exists for this model: the table has no reference column.
  _write(str(run / 'calibration' / 'calibration.json'), {
      'model': 'alexnet', 'dataset': 'cifar10', 'split': 'test', 'num_bins': 10,
      'rows': [{'kind': 'label_smoothing', 'label': 'alpha=0', 'alpha': 0.0, 'ece': 0.0193,
                'temperature': 1.0, 'accuracy': 0.8, 'nll': 0.6},
               {'kind': 'temperature_scaled', 'label': 'alpha=0 + temperature scaling',
                'ece': 0.0107, 'temperature': 1.063, 'accuracy': 0.8, 'nll': 0.59}]},
      'calibration')
  _write(str(tmp_path / 'other' / 'table.json'), {
      'model': 'fc', 'dataset': 'mnist', 'split': 'test',
      'rows': [{'alpha': 0.1, 'num_seeds': 1, 'steps': 10700, 'accuracy': 99.28,
                'accuracy_std': 0.0, 'nll': 0.1299, 'ece': 0.1033}]}, 'accuracy')
  text = report.build_report(str(tmp_path))
  claims, *tables = _tables(text)
  # The claims table first: these results check no claim (one alpha, no summary).
  assert claims == [['claim (paper)', 'our setting', 'verdict (test, precision)', 'section'],
                    ['---'] * 4]
  assert len(tables) == 3
  for table in tables:  # header, separator and every row have as many cells
    assert len({len(row) for row in table}) == 1, table
  accuracy = dict((row[0], row[1:]) for row in tables[0][2:])
  assert accuracy['0'] == ['80.02 (1 seed(s), 30000 steps)', '0.5786', '0.0134',
                           '86.80 +- 0.20', '85.01']
  assert tables[0][0][3] == 'ECE (20 bins)'  # the recorded count, not the default's 15
  # accuracy sections come first; then the calibration table: label, T, accuracy, NLL, ECE
  assert tables[2][2] == ['alpha=0', '1.000', '80.00', '0.6000', '0.019']
  assert tables[2][3] == ['alpha=0 + temperature scaling', '1.063', '80.00', '0.5900', '0.011']
  assert '### Calibration (ECE, 10 bins): alexnet on cifar10' in text  # the recorded count
  # The note is under both sections from the stand-in folder (the calibration one through its
  # parent), and under no other.
  assert text.count('Stand-in data, 30,000 of 390,000 steps.') == 2
  start = text.index('fc on mnist')
  mnist = text[start:text.index('###', start)]
  assert 'Stand-in' not in mnist and '99.28' in mnist
  # Every section says how it was made.
  assert text.count('Provenance: `python -m experiments.accuracy_table --model=fc`; AMD EPYC, '
                    'family 26; seeds 0, 1; data: mnist official; wall time of this command '
                    '1.5 min') == 3


def test_a_command_of_seconds_shows_its_seconds():
  # A section rerun from committed logits takes seconds: '0.1 min' would hide it as nothing.
  assert [report._duration(s) for s in (7.4, 59.4, 90)] == ['7 s', '59 s', '1.5 min']


def test_figure_6_shows_each_run_and_the_spread_at_initialization(tmp_path):
  steps = [0, 500, 1000]
  _write(str(tmp_path / 'mi' / 'mutual_information_points.json'), {
      'model': 'resnet56', 'dataset': 'cifar10', 'classes': [0, 5], 'num_examples': 600,
      'runs': {'alpha=0': {'steps': steps, 'mutual_information': [0.767, 1.727, 1.527]}},
      'at_initialization': {'seeds': [0, 1, 2], 'mutual_information': [0.767, 0.068, -0.012]}},
         'mutual_information')
  text = report.build_report(str(tmp_path))
  claims, section = _tables(text)
  (row,) = section[2:]
  assert row == ['alpha=0', '0.767', '1.727 (500)', '1.527 (1000)', '+0.834']
  # Its row of the claims table: an observation without a test, linked to the section's anchor
  # (GitHub's: lower case, punctuation dropped, spaces to hyphens).
  (claim,) = claims[2:]
  assert claim[0].startswith('Figure 6: the mutual information rises')
  assert claim[1] == 'no NOTE.md: see the section; mnist official; seeds 0, 1'
  assert claim[2] == 'observed only (one run, no precision computed): alpha=0: final - log 2 +0.834'
  assert claim[3] == '[mi](#mutual-information-resnet56-on-cifar10-classes-0-5-n--600-mi)'
  assert '### Mutual information: resnet56 on cifar10, classes [0, 5], N = 600 (mi)' in text
  assert ('At initialization alone (3 fresh networks, seeds 0-2, the same draws): median 0.068, '
          'range -0.012 to 0.767') in text


def test_a_superseded_result_keeps_its_section_but_leaves_the_claims_table(tmp_path):
  for where in ('mi', 'mi_literal'):
    _write(str(tmp_path / where / 'mutual_information_points.json'), {
        'model': 'fc', 'dataset': 'mnist', 'classes': [0, 1], 'num_examples': 600,
        'runs': {'alpha=0': {'steps': [0, 500], 'mutual_information': [0.1, 1.2]}}},
           'mutual_information')
  _write(str(tmp_path / 'mi_literal' / 'NOTE.md'), '**Literal-init comparison row, superseded**: '
         'variance 0.03.')
  text = report.build_report(str(tmp_path))
  claims, *_ = _tables(text)
  assert [row[3] for row in claims[2:]] == [
      '[mi](#mutual-information-fc-on-mnist-classes-0-1-n--600-mi)']
  assert ('Superseded comparison runs, in their sections only: [mi_literal](#mutual-information-fc-'
          'on-mnist-classes-0-1-n--600-mi_literal).') in text
  assert '(mi_literal)' in text  # its section stays


def test_a_result_lists_its_figures_and_the_report_shows_them_beside_the_table(tmp_path):
  out = tmp_path / 'sweep'
  out.mkdir()
  (out / 'reliability.png').write_bytes(b'png')
  path = section_results.write(str(out), calibration_table.RESULT, {
      'model': 'fc', 'dataset': 'mnist', 'split': 'test', 'num_bins': 15, 'rows': []},
      PROVENANCE)
  with open(path) as f:
    written = json.load(f)
  assert os.path.basename(path) == 'calibration.json'
  assert (written['kind'], written['schema_version'], written['figures']) == (
      'calibration', section_results.SCHEMA_VERSION, ['reliability.png'])
  text = report.build_report(str(tmp_path))
  table_at = text.index('| model | T | accuracy (%)')
  assert 0 < text.index('![reliability.png](sweep/reliability.png)') < table_at
  with pytest.raises(ValueError, match="unknown result kind 'figure7'; a section declares"):
    section_results.write(str(out), 'figure7', {}, PROVENANCE)


def test_old_results_are_refused_with_the_migration_command_and_migrated_once(tmp_path):
  results = tmp_path / 'results'
  rows = [{'key': 'teacher_dropout', 'label': 'teacher dropout', 'test_error': 0.8}]
  _write(str(results / 'mnist' / 'distill_mnist.json'), {'rows': rows})  # before seeds existed
  (results / 'mnist' / 'NOTE.md').write_text('One seed.')
  proc = run_binary('experiments.report', f'--results_dir={results}')
  assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
      f'error: {results / "mnist" / "distill_mnist.json"} predates the results contract (no '
      f'"kind"); migrate its folder once: {section_results.MIGRATE}.')
  proc = run_binary('experiments.report', '--migrate', f'--results_dir={results}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f'migrated {results / "mnist" / "distill_mnist.json"}' in proc.stdout
  migrated = run_files.read_json(str(results / 'mnist' / 'distill_mnist.json'))
  assert migrated['kind'] == 'distillation_mnist' and migrated['rows'] == rows
  assert migrated['summary'] == {'networks': {'teacher_dropout': {'mean': 0.8, 'std': 0.0,
                                                                  'n': 1}}}
  assert not migrated['provenance']['recorded']
  assert '| teacher dropout | 0.80 (1 seed(s)) | 0.67 | 0.81 |' in proc.stdout
  # Once migrated, migrating again changes nothing; a kind in the wrong file is refused.
  assert section_results.migrate(str(results), report.KINDS) == []
  # A binary printing its own section reads only its kind: an old file of another kind below
  # its folder does not stop it.
  _write(str(results / 'old' / 'table.json'), {'rows': []})
  assert '| teacher dropout |' in '\n'.join(report.section_lines(str(results),
                                                                ['distillation_mnist']))
  _write(str(results / 'other' / 'table.json'), {'rows': []}, 'calibration')
  with pytest.raises(run_files.RunDirError, match="is a 'calibration' result of schema 1, not "
                     "'accuracy'"):
    section_results.read_all(str(results), report.KINDS)


def test_the_data_is_named_official_stand_in_or_unverified(tmp_path):
  """Independent references: the bundled MNIST is the official release (its README gives the
  official MD5s), the CIFAR-10 stand-in alone has its test set in class order."""
  assert sources.identify('mnist') == 'official'
  assert sources.identify('multi30k') == 'official'
  mnist = tmp_path / 'mnist_copy' / 'mnist'
  mnist.mkdir(parents=True)
  (mnist / 't10k-images-idx3-ubyte.gz').write_bytes(b'other bytes')
  assert sources.identify('mnist', str(tmp_path / 'mnist_copy')) == 'unverified'
  _, (_, labels) = write_cifar10_bin(str(tmp_path / 'shuffled'), per_batch=4, test=30)
  assert np.any(np.diff(labels) < 0)
  assert sources.identify('cifar10', str(tmp_path / 'shuffled')) == 'unverified'
  in_class_order = tmp_path / 'sorted' / 'cifar-10-batches-bin'
  in_class_order.mkdir(parents=True)
  for name in os.listdir(tmp_path / 'shuffled' / 'cifar-10-batches-bin'):
    records = np.fromfile(tmp_path / 'shuffled' / 'cifar-10-batches-bin' / name, np.uint8)
    records = records.reshape(-1, 3073)
    if name == 'test_batch.bin':
      records = records[np.argsort(records[:, 0], kind='stable')]
    records.tofile(in_class_order / name)
  assert sources.identify('cifar10', str(tmp_path / 'sorted')) == 'stand-in'
  assert sources.identify('cifar100', str(tmp_path)) == 'unverified'
