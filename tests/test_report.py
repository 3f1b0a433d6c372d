"""The report: well-formed tables beside the references, provenance notes carried along."""
import json
import os

from experiments import report


def _write(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
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
      'rows': [{'alpha': 0.0, 'num_seeds': 1, 'steps': 30000, 'accuracy': 80.02,
                'accuracy_std': 0.0}]})
  # No published ECE exists for this model: the table has no reference column.
  _write(str(run / 'calibration' / 'calibration.json'), {
      'model': 'alexnet', 'dataset': 'cifar10', 'split': 'test',
      'rows': [{'kind': 'label_smoothing', 'label': 'alpha=0', 'alpha': 0.0, 'ece': 0.0193},
               {'kind': 'temperature_scaled', 'label': 'alpha=0 + temperature scaling',
                'ece': 0.0107, 'temperature': 1.063}]})
  _write(str(tmp_path / 'other' / 'table.json'), {
      'model': 'fc', 'dataset': 'mnist', 'split': 'test',
      'rows': [{'alpha': 0.1, 'num_seeds': 1, 'steps': 10700, 'accuracy': 99.28,
                'accuracy_std': 0.0}]})
  text = report.build_report(str(tmp_path))
  tables = _tables(text)
  assert len(tables) == 3
  for table in tables:  # header, separator and every row have as many cells
    assert len({len(row) for row in table}) == 1, table
  accuracy = dict((row[0], row[1:]) for row in tables[0][2:])
  assert accuracy['0'] == ['80.02 (1 seed(s), 30000 steps)', '86.80 +- 0.20', '85.01']
  assert tables[2][2] == ['alpha=0', '0.019']  # accuracy sections come first
  assert tables[2][3] == ['alpha=0 + temperature scaling', '0.011 (T 1.06)']
  # The note is under both sections from the stand-in folder (the calibration one through its
  # parent), and under no other.
  assert text.count('Stand-in data, 30,000 of 390,000 steps.') == 2
  start = text.index('fc on mnist')
  mnist = text[start:text.index('###', start)]
  assert 'Stand-in' not in mnist and '99.28' in mnist
