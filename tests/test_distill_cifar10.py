"""The CIFAR-10 distillation section (Figure 5): its plan, its contrasts and findings, and its
results reaching the report, on tiny files in the official CIFAR binary layout."""
import json
import os

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from data import run_files
from experiments import distillation_section as section
from models import recipes, training
from tests.conftest import run_binary, write_cifar10_bin

# ResNet-56 teachers with one block per stage (ResNet-8): the plumbing is the same, the graph
# traces 7x faster.
TINY = ['--batch_size=8', '--validation_size=40', '--resnet_blocks=1']


def _fake_finished_run(run_dir, config):
  """A finished run as far as a plan can tell: its config and a results.json."""
  os.makedirs(run_dir)
  run_files.write_json(os.path.join(run_dir, 'config.json'),
                       {'config': training.config_to_json(config), 'config_type': 'TrainConfig'})
  run_files.write_json(os.path.join(run_dir, 'results.json'), {'finished': True})


def test_the_reduced_preset_plans_every_run_in_order_and_names_what_it_reuses(tmp_path):
  write_cifar10_bin(str(tmp_path), per_batch=24, test=16)
  out = tmp_path / 'sweep'
  baseline = recipes.recipe('alexnet', dataset='cifar10', train_steps=30_000, batch_size=8,
                            validation_size=40)
  _fake_finished_run(str(tmp_path / 'earlier_alexnet'), baseline)
  teacher_checkpoints = out / 'teachers' / 'alpha_0_seed_0' / 'checkpoints'
  os.makedirs(teacher_checkpoints)
  (teacher_checkpoints / 'ckpt-500.index').write_bytes(b'')
  (teacher_checkpoints / 'checkpoint').write_text('model_checkpoint_path: "ckpt-500"\n')
  proc = run_binary('experiments.distill_cifar10', '--preset=standin_reduced', '--dry_run',
                    f'--data_dir={tmp_path}', f'--output_dir={out}', *TINY,
                    f'--reuse_dirs={tmp_path / "earlier_alexnet"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  plan = [line for line in proc.stdout.splitlines() if line.startswith('  [')]
  names = [line.split('] ')[1][:38].strip() for line in plan]
  assert names == [
      'teacher 0 seed 0', 'teacher 0.3 seed 0', 'teacher 0.6 seed 0',
      'student_baseline 0 seed 0', 'student_baseline 0.3 seed 0', 'student_baseline 0.6 seed 0',
      *[f'student_hard_teacher {t} seed 0' for t in (1, 2, 4, 8, 16)],
      'student_smoothed_teacher 0.3 seed 0', 'student_smoothed_teacher 0.6 seed 0',
      'student_on_the_fly 4 seed 0']
  assert all(' 16000 steps' in line for line in plan[:3])
  assert all(' 30000 steps' in line for line in plan[3:])
  assert 'resume from step 500' in plan[0] and plan[1].split()[-2:] != ['0.0', 'min']
  assert 'finished' in plan[3] and f'(reused: {tmp_path / "earlier_alexnet"})' in plan[3]
  assert plan[3].split('finished')[1].split()[0] == '0.0'  # nothing left to train
  assert 'then 6 contrast runs (3 matched points x seeds 1,2' in proc.stdout
  assert 'total: about' in proc.stdout
  assert not os.path.exists(out / 'students_baseline')  # a dry run trains nothing


def test_the_sweep_eta_adds_the_runs_left_at_the_measured_step_times(tmp_path, monkeypatch):
  grid = section.Grid(str(tmp_path), [0.0, 0.3], [1.0], [0], [0], dict(dataset='cifar10'),
                      teacher_steps=100, student_steps=50, teacher_outputs='cached')
  runs = grid.grid_runs() + [grid.run('student_on_the_fly', 1.0, 0)]
  checkpoints = tmp_path / 'teachers' / 'alpha_0_seed_0' / 'checkpoints'
  os.makedirs(checkpoints)
  (checkpoints / 'ckpt-40.index').write_bytes(b'')
  (checkpoints / 'checkpoint').write_text('model_checkpoint_path: "ckpt-40"\n')
  step_seconds = {'resnet56': 0.5, 'alexnet': 0.05, 'teacher_forward': 0.2}
  later = section.contrast_seconds(grid, 1000, step_seconds, 6)
  assert later == pytest.approx(6 * 50 * 0.05, rel=1e-12)
  # By hand: teachers 60 x 0.5 (resumed at 40) and 100 x 0.5; baselines 0, 0.3, the T = 1 and
  # smoothed students 50 x 0.05 each; the on-the-fly student 50 x (0.05 + 0.2).
  own = [30.0, 50.0, 2.5, 2.5, 2.5, 2.5, 12.5]
  queued = section.seconds_queued_after(runs, 1000, step_seconds, later)
  assert queued == pytest.approx([sum(own[i + 1:]) + 15.0 for i in range(7)], rel=1e-12)
  assert section.plan_lines(runs, 1000, step_seconds, (6, [1, 2], later))[-1] == (
      f'total: about {(sum(own) + 15.0) / 3600:.1f} h on this machine')

  # A progress line: 200 steps (of 10 examples) in 100 s, 600 steps left: eta 300 s = 5.0 min;
  # the sweep's 7,200 s queued after it make 7,500 s = 2.1 h.
  clock = iter([1000.0, 1100.0])
  monkeypatch.setattr(training.time, 'time', lambda: next(clock))
  saved, lines = [], []
  progress = training._Progress(  # pylint: disable=protected-access
      type('Checkpoints', (), {'save': lambda self, step: saved.append(step)})(), total=1000,
      start=200, config=recipes.recipe('fc', batch_size=10), queued_seconds=7200.0,
      log=lambda line, flush: lines.append(line))
  at_step = lambda step: type('Optimizer', (), {'iterations': tf.constant(step, tf.int64)})()
  progress.set_model(type('Model', (), {'optimizer': at_step(400)})())
  progress.on_epoch_end(0, {})
  assert saved == [400]
  assert lines[0].endswith('(40%)  20 examples/s, eta 5.0 min, sweep eta 2.1 h'), lines


def _point(group, setting, seed, gamma, accuracy):
  return {'group': group, 'setting': setting, 'seed': seed, 'gamma': gamma,
          'accuracy': {'validation': accuracy / 100}}


def _grid_points():
  """Seed 0 of a small grid, then seeds 1 and 2 of the matched points (T = 4, baseline 0.3,
  smoothed teacher 0.3), with hand-picked accuracies."""
  points = [_point('teacher', 0.0, 0, 0.0, 90.0), _point('teacher', 0.3, 0, 0.3, 91.0),
            _point('teacher', 0.6, 0, 0.6, 91.5)]
  points += [_point('student_baseline', a, 0, a, acc)
             for a, acc in ((0.0, 80.0), (0.3, 80.6), (0.6, 79.0))]
  points += [_point('student_hard_teacher', t, 0, g, acc)
             for t, g, acc in ((1, 0.02, 80.5), (4, 0.28, 82.0), (16, 0.8, 81.0))]
  points += [_point('student_smoothed_teacher', a, 0, g, acc)
             for a, g, acc in ((0.3, 0.33, 80.2), (0.6, 0.62, 79.5))]
  for seed, (hard, base, smooth) in ((1, (81.5, 80.1, 80.0)), (2, (81.8, 80.9, 80.5))):
    points += [_point('student_hard_teacher', 4, seed, 0.28, hard),
               _point('student_baseline', 0.3, seed, 0.3, base),
               _point('student_smoothed_teacher', 0.3, seed, 0.33, smooth)]
  return points


def test_the_contrasts_are_matched_at_the_best_students_gamma_and_tested_in_pairs(tmp_path):
  points = _grid_points()
  seed0 = [p for p in points if p['seed'] == 0]
  assert section.matched_contrast(seed0) == (4, 0.3, 0.3)  # best T; nearest gamma to 0.28
  grid = section.Grid(str(tmp_path), [0.0, 0.3, 0.6], [1.0, 4.0, 16.0], [0], [0],
                      dict(dataset='cifar10'), teacher_outputs='cached')
  runs = section.contrast_runs(grid, seed0, [1, 2])
  assert [(r.group, r.setting, r.seed) for r in runs] == [
      ('student_hard_teacher', 4, 1), ('student_baseline', 0.3, 1),
      ('student_smoothed_teacher', 0.3, 1), ('student_hard_teacher', 4, 2),
      ('student_baseline', 0.3, 2), ('student_smoothed_teacher', 0.3, 2)]
  assert runs[0].config.teacher_dir == str(tmp_path / 'teachers' / 'alpha_0_seed_0')
  assert runs[2].config.teacher_dir == str(tmp_path / 'teachers' / 'alpha_0.3_seed_0')
  assert runs[0].config.teacher_outputs == 'cached' and runs[0].config.distill_temperature == 4
  paired = section.paired_contrasts(points)
  hard, base, smooth = [82.0, 81.5, 81.8], [80.6, 80.1, 80.9], [80.2, 80.0, 80.5]
  for claim, (a, b) in zip(paired['claims'], ((hard, base), (smooth, hard), (smooth, base))):
    want = stats.ttest_rel(a, b)
    assert claim['n'] == 3 and claim['p_value'] == pytest.approx(want.pvalue, rel=1e-9)
    assert claim['mean'] == pytest.approx(np.mean(np.subtract(a, b)), rel=1e-9)
  assert paired['claims'][0]['verdict'] == 'holds beyond seed noise'  # +1.9, +1.4, +0.9


def test_the_findings_read_the_single_seed_grid_by_hand():
  found = section.findings(_grid_points())
  assert found['teacher_improves']['verdict'] == 'holds (one seed)'  # 91.0, 91.5 > 90.0
  # Baseline interpolated at each student's gamma: T 1 at 0.02 -> 80.04 (+0.46), T 4 at 0.28
  # -> 80.56 (+1.44), T 16 at 0.8: outside the baseline's gamma range, not compared.
  assert found['every_temperature_beats_baseline']['observed'] == 'T 1: +0.46, T 4: +1.44'
  assert found['every_temperature_beats_baseline']['verdict'].startswith('holds for 2 of 2')


def test_figure5_and_the_resnet_figure6_reach_the_report_from_a_tiny_run(tmp_path):
  write_cifar10_bin(str(tmp_path), per_batch=24, test=16)
  out = tmp_path / 'results' / 'cifar10'
  sweep = ['experiments.distill_cifar10', f'--data_dir={tmp_path}', f'--output_dir={out}',
           '--teacher_alphas=0,0.3', '--distill_temperatures=1,4', '--num_seeds=1',
           '--contrast_seeds=1', '--train_steps=2', *TINY, '--checkpoint_every=1',
           '--teacher_outputs=cached', '--on_the_fly_temperatures=4', '--mi_every=1',
           '--mi_examples_per_class=3']
  proc = run_binary(*sweep)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'sweep eta' in proc.stdout  # progress lines carry the whole sweep's ETA
  with open(out / 'points.json') as f:
    table = json.load(f)
  groups = [(p['group'], p['seed']) for p in table['points']]
  assert groups.count(('student_hard_teacher', 1)) == 1 and ('student_on_the_fly', 0) in groups
  # Once the grid has finished, a restart plans the contrast runs by name, like the others.
  again = run_binary(*sweep, '--dry_run')
  plan = [line for line in again.stdout.splitlines() if line.startswith('  [')]
  assert len(plan) == len(groups) == 11 and all(' finished ' in line for line in plan), plan
  assert 'student_hard_teacher' in plan[-3] and 'contrast runs' not in again.stdout
  assert all(not os.path.isabs(p['run_dir']) and os.path.isdir(out / p['run_dir'])
             for p in table['points'])
  teachers = [str(out / 'teachers' / f'alpha_{a}_seed_0') for a in ('0', '0.3')]
  mi = run_binary('experiments.mutual_information_cifar10', f'--run_dirs={",".join(teachers)}',
                  f'--output_dir={out / "mutual_information"}')
  assert mi.returncode == 0, mi.stderr[-3000:]
  report = run_binary('experiments.report', f'--results_dir={tmp_path / "results"}')
  assert report.returncode == 0, report.stderr[-3000:]
  text = report.stdout
  assert '### CIFAR-10 distillation, Figure 5 (cifar10, validation accuracy %)' in text
  assert '![figure5.png](cifar10/figure5.png)' in text
  assert '![mutual_information.png](cifar10/mutual_information/mutual_information.png)' in text
  provenance = table['provenance']
  assert provenance['command'].startswith('python -m experiments.distill_cifar10 --data_dir=')
  assert provenance['seeds'] == [0, 1] and provenance['data'] == {'cifar10': 'unverified'}
  assert table['figures'] == ['figure5.png'] and provenance['wall_seconds'] > 0
  assert 'the temperature-distilled student beats the student baseline: hard teacher T=' in text
  assert 'cached teacher outputs against the teacher on the fly (T = 4, seed 0)' in text
  assert '### Mutual information: resnet56 on cifar10, classes [0, 5], N = 6' in text
  assert table['progress'] == {'finished': len(groups), 'planned': len(groups)}
  assert '**Partial' not in text
  # Read back without training, the finished sweep gives the same points; a plan with one more
  # temperature shows as partial (its grid is unfinished, so no contrast is chosen yet).
  flags = [f'--data_dir={tmp_path}', f'--output_dir={out}', '--teacher_alphas=0,0.3',
           '--num_seeds=1', '--contrast_seeds=1', '--train_steps=2', *TINY,
           '--teacher_outputs=cached', '--on_the_fly_temperatures=4', '--finished_only']
  again = run_binary('experiments.distill_cifar10', *flags, '--distill_temperatures=1,4')
  assert again.returncode == 0, again.stderr[-3000:]
  with open(out / 'points.json') as f:
    assert json.load(f)['points'] == table['points']
  partial = run_binary('experiments.distill_cifar10', *flags, '--distill_temperatures=1,4,8')
  assert partial.returncode == 0, partial.stderr[-3000:]
  with open(out / 'points.json') as f:
    progress = json.load(f)['progress']
  assert progress == {'finished': len(groups) - 3, 'planned': len(groups) + 1}
  assert f'**Partial: {len(groups) - 3} of the {len(groups) + 1} planned runs' in partial.stdout
