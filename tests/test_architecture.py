"""The package layers only point down: every import (module-level or inside a function, absolute
or relative, in a package or any of its sub-packages) of a project package names the same
package or one listed before it in LAYERS."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ('data', 'calibration', 'models', 'distillation', 'visualization', 'experiments')


def _imported_packages(path, package=None):
  """(line, project package) of every import in a file; a relative import resolves against
  the file's own package (`package`, the file's folder below ROOT as a dotted name)."""
  tree = ast.parse(open(path, encoding='utf-8').read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level:
      parts = (package or '').split('.')
      base = parts[:len(parts) - node.level + 1]
      names = ['.'.join(base + ([node.module] if node.module else []))]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [node.module]
    else:
      continue
    for name in names:
      top = name.split('.')[0]
      if top in LAYERS or top == 'tests':
        yield node.lineno, top


def _upward_imports(root, package):
  """'path:line imports package' for each import, in `package` under `root` and its
  sub-packages, of a package above it."""
  allowed = set(LAYERS[:LAYERS.index(package) + 1])
  upward = []
  for folder, _, names in os.walk(os.path.join(root, package)):
    dotted = os.path.relpath(folder, root).replace(os.sep, '.')
    for name in sorted(n for n in names if n.endswith('.py')):
      path = os.path.join(folder, name)
      upward += [f'{os.path.relpath(path, root)}:{line} imports {top}'
                 for line, top in _imported_packages(path, dotted) if top not in allowed]
  return upward


@pytest.mark.parametrize('package', LAYERS)
def test_imports_only_point_down(package):
  upward = _upward_imports(ROOT, package)
  assert not upward, 'imports up the layers ' + ' < '.join(LAYERS) + ':\n' + '\n'.join(upward)


def test_the_check_sees_function_level_imports(tmp_path):
  path = tmp_path / 'module.py'
  path.write_text('import os\n\ndef f():\n  from experiments import report\n'
                  '  import models.training\n')
  assert list(_imported_packages(str(path))) == [(4, 'experiments'), (5, 'models')]


def test_the_check_sees_relative_imports_in_sub_packages(tmp_path):
  """A file two folders down (data/run_directory) importing upwards, relatively or not, is
  caught; relative imports within data are not."""
  folder = tmp_path / 'data' / 'run_directory'
  folder.mkdir(parents=True)
  (folder / 'module.py').write_text('from . import run_files\nfrom .. import sources\n'
                                    'from ...models import y\nimport experiments.report\n')
  assert _upward_imports(str(tmp_path), 'data') == [
      os.path.join('data', 'run_directory', 'module.py') + ':3 imports models',
      os.path.join('data', 'run_directory', 'module.py') + ':4 imports experiments']
