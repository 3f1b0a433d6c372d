"""The package layers only point down: every import (module-level or inside a function) of a
project package names the same package or one listed before it in LAYERS."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ('data', 'calibration', 'models', 'distillation', 'visualization', 'experiments')


def _imported_packages(path):
  """(line, project package) of every import in a file."""
  tree = ast.parse(open(path, encoding='utf-8').read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names = [node.module]
    else:
      continue
    for name in names:
      top = name.split('.')[0]
      if top in LAYERS or top == 'tests':
        yield node.lineno, top


@pytest.mark.parametrize('package', LAYERS)
def test_imports_only_point_down(package):
  allowed = set(LAYERS[:LAYERS.index(package) + 1])
  upward = []
  for name in sorted(os.listdir(os.path.join(ROOT, package))):
    if name.endswith('.py'):
      path = os.path.join(ROOT, package, name)
      upward += [f'{package}/{name}:{line} imports {top}'
                 for line, top in _imported_packages(path) if top not in allowed]
  assert not upward, 'imports up the layers ' + ' < '.join(LAYERS) + ':\n' + '\n'.join(upward)


def test_the_check_sees_function_level_imports(tmp_path):
  path = tmp_path / 'module.py'
  path.write_text('import os\n\ndef f():\n  from experiments import report\n'
                  '  import models.training\n')
  assert list(_imported_packages(str(path))) == [(4, 'experiments'), (5, 'models')]
