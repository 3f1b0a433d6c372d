r"""Prints this project's results beside the paper's and the replication's, section by section.

  python -m experiments.report [--results_dir=results] [--output=results/REPORT.md]
Reads every table the section binaries wrote under --results_dir, and shows a folder's NOTE.md
(stand-in data, shortened schedule, ...) under each section made from it.
"""
import math
import os
import re
import statistics

from absl import flags

from calibration import metrics
from calibration import table as calibration_table
from calibration import verdicts
from data.run_directory import run_files, section_results
from distillation import figure5, mi_record, table4
from experiments import common
from experiments import reference_numbers as ref
from models import sweep
from models import translation_claims as translation_rules
from visualization import penultimate

flags.DEFINE_string('results_dir', 'results', 'Folder searched for section result files.')
flags.DEFINE_string('output', None, 'Also write the report to this markdown file.')
flags.DEFINE_boolean('migrate', False, 'First bring results written before the results '
                     'contract (data.run_directory.section_results) under --results_dir into it.')
FLAGS = flags.FLAGS

NOTE = 'NOTE.md'  # a results folder's provenance, shown under each of its sections


def _fmt(value, std=None, digits=2):
  if value is None:
    return '-'
  return f'{value:.{digits}f}' + (f' +- {std:.{digits}f}' if std else '')


def _ece_at_t(ece, temperature):
  return f'{ece:.3f} (T {temperature:.2f})'


def _ece_at_alpha(ece, alpha):
  return f'{ece:.3f} (alpha {alpha:g})'


def _heading(results_dir, where, result, title):
  """A section's title, the NOTE.md of its folder or the nearest parent folder (what the
  numbers are not: stand-in data, a shortened schedule), its provenance and its figures."""
  lines = [title, '']
  parts = where.split(os.sep)
  for depth in range(len(parts), 0, -1):
    path = os.path.join(results_dir, *parts[:depth], NOTE)
    if run_files.gfile.exists(path):
      lines += [run_files.gfile.GFile(path).read().strip(), '']
      break
  lines += [_provenance_line(result['provenance']), '']
  lines += [f'![{name}]({os.path.join(where, name)})' for name in result['figures']]
  return lines + ([''] if result['figures'] else [])


def _label(where):
  """A result's folder in a title: below the results folder, or this one (a section's own
  markdown beside its result)."""
  return 'this folder' if where == '.' else where


def _provenance_line(record):
  if not record.get('recorded', True):
    return f'Provenance: {record["note"]}.'
  data = ', '.join(f'{name} {identity}' for name, identity in record['data'].items())
  return (f'Provenance: `{record["command"]}`; {record["cpu"]}; seeds '
          f'{", ".join(map(str, record["seeds"]))}; data: {data}; wall time of this command '
          f'{_duration(record["wall_seconds"])}; {record["date"]}.')


def _duration(seconds):
  """Seconds below a minute (a section rerun from its logits takes a few), minutes above."""
  return f'{seconds:.0f} s' if seconds < 60 else f'{seconds / 60:.1f} min'


def _row(cells):
  return '| ' + ' | '.join(cells) + ' |'


def _table_head(columns):
  return [_row(columns), '|---' * len(columns) + '|']


def accuracy_section(results_dir, where, table):
  lines = []
  key = (table.get('model'), table.get('dataset'))
  refs = ref.ACCURACY.get(key, {})
  lines += _heading(results_dir, where, table, f'### Accuracy: {key[0]} on {key[1]} '
                    f'({_label(where)}, {table["split"]} split)')
  # Results written before the bin count was recorded used the default: the sweep has no flag.
  num_bins = table.get('num_bins', metrics.NUM_BINS)
  lines += _table_head(['alpha', 'this project: accuracy (%)', 'NLL', f'ECE ({num_bins} bins)',
                        *refs])
  for row in table['rows']:
    cells = [_fmt(*refs[s].get(row['alpha'], (None,))) for s in refs]
    lines.append(_row([f'{row["alpha"]:g}', f'{_fmt(row["accuracy"], row["accuracy_std"])} '
                       f'({row["num_seeds"]} seed(s), {row["steps"]} steps)',
                       f'{row["nll"]:.4f}', f'{row["ece"]:.4f}', *cells]))
  lines.append('')
  return lines


def calibration_section(results_dir, where, table):
  lines = []
  key = (table.get('model'), table.get('dataset'))
  refs = ref.CALIBRATION.get(key, {})
  lines += _heading(results_dir, where, table,
                    f'### Calibration (ECE, {table["num_bins"]} bins): {key[0]} on {key[1]} '
                    f'({_label(where)}, {table["split"]} split)')
  lines += _table_head(['model', 'T', 'accuracy (%)', 'NLL', 'this project: ECE', *refs])
  for row in table['rows']:
    if row['kind'] == 'temperature_scaled':
      cells = [_ece_at_t(*refs[s]['temperature_scaled']) for s in refs]
    else:
      cells = [_fmt(refs[s]['alpha'].get(row['alpha']), digits=3) for s in refs]
    lines.append(_row([row['label'], f'{row["temperature"]:.3f}', f'{100 * row["accuracy"]:.2f}',
                       f'{row["nll"]:.4f}', f'{row["ece"]:.3f}', *cells]))
  best = table.get('summary', {}).get('label_smoothing')
  if best:  # Table 3's third column: the label-smoothing alpha with the lowest ECE
    cells = [_ece_at_alpha(*min(((e, a) for a, e in refs[s]['alpha'].items() if a > 0),
                                default=(math.nan, math.nan))) for s in refs]
    lines.append(_row(['label smoothing, best alpha (Table 3)', '', '', '',
                       _ece_at_alpha(best['ece'], best['alpha']), *cells]))
  found = calibration_table.claims(table.get('summary', {}))
  if found:
    lines += ['', f'Paper claims (Table 3; test: {found[0]["test"]}):', '']
    lines += [f'- {c["text"]}: {c["observed"]}: **{c["verdict"]}**.' for c in found]
  lines.append('')
  return lines


def distillation_section(results_dir, where, table):
  """Table 4: per network the mean +- std test error over seeds, and the paper's claims checked
  by paired differences over seeds."""
  lines = []
  summary = table['summary']
  labels = {r['key']: r['label'] for r in table['rows']}
  lines += _heading(results_dir, where, table,
                    f'### MNIST distillation, test error % ({_label(where)})')
  lines += _table_head(['network', 'this project', ref.PAPER, ref.REPLICATION])
  for key, s in summary['networks'].items():
    refs = ref.DISTILLATION_MNIST.get(key, {})
    lines.append(_row([labels.get(key, key), f'{_fmt(s["mean"], s["std"])} ({s["n"]} seed(s))',
                       _fmt(refs.get(ref.PAPER)), _fmt(refs.get(ref.REPLICATION))]))
  for claim in summary.get('claims', []):
    if claim['n'] > 1:
      lines += ['', f'Paper: {claim["text"]}. Paired difference {claim["first"]} - '
                f'{claim["second"]} over {claim["n"]} seeds: {claim["mean"]:+.3f} +- '
                f'{claim["std"]:.3f} points (t = {claim["t"]:.2f}, two-sided p = '
                f'{claim["p_value"]:.3f}): **{claim["verdict"]}**.']
  lines.append('')
  return lines


def cifar10_distillation_section(results_dir, where, table):
  """Figure 5: accuracy against gamma for teachers and students, and the paper's findings."""
  lines = []
  split = table['split']
  lines += _heading(results_dir, where, table,
                    f'### CIFAR-10 distillation, Figure 5 ({_label(where)}, '
                    f'{split} accuracy %)')
  progress = table.get('progress')
  if progress and progress['finished'] < progress['planned']:
    lines += [f'**Partial: {progress["finished"]} of the {progress["planned"]} planned runs have '
              'finished** (the sweep rewrites this section after every run).', '']
  lines += _table_head(['curve', 'setting', 'gamma', 'mean [min, max]', 'seeds'])
  for group, rows in table['summary'].items():
    for r in rows:
      spread = f' [{r["min"]:.2f}, {r["max"]:.2f}]' if r['n'] > 1 else ''
      lines.append(_row([group.replace('_', ' '), f'{r["setting"]:g}', f'{r["gamma"]:.3f}',
                         f'{r["mean"]:.2f}{spread}', str(r['n'])]))
  found = figure5.findings(table['points'], split)  # current rules, stored points
  lines += ['', 'Paper findings (Section 4, Figure 5):', '']
  for key in ('teacher_improves', 'every_temperature_beats_baseline'):
    if key in found:
      f = found[key]
      lines.append(f'- {f["text"]}: {f["observed"]} (test: {f["test"]}): **{f["verdict"]}**.')
  for claim in found['smoothed_at_matched_gamma'] + (found['paired'] or {}).get('claims', []):
    lines.append(f'- {_claim_line(claim)}')
  for row in figure5.on_the_fly_check(table['points'], split):
    lines.append(f'- {_on_the_fly_line(row)}')
  if lines[-1] == '':
    lines.append('- none testable yet: each finding needs students beside the baselines.')
  lines.append('')
  return lines


def _on_the_fly_line(row):
  """The cached-outputs factor of the cause analysis: both students, and whether the key
  contrast's one-seed verdict changes with the teacher on the fly."""
  line = (f'cached teacher outputs against the teacher on the fly (T = {row["temperature"]:g}, '
          f'seed {row["seed"]}): {row["cached"]:.2f} vs {row["on_the_fly"]:.2f} '
          f'({row["cached"] - row["on_the_fly"]:+.2f})')
  if 'baseline' not in row:
    return line + '.'
  cached, fly = row['cached_against_baseline'], row['on_the_fly_against_baseline']
  against = '; '.join(f'{name} {c["mean"]:+.2f} (+-{verdicts.Z_95 * c["se"]:.2f}): {c["verdict"]}'
                      for name, c in (('cached', cached), ('on the fly', fly)))
  return (f'{line}; against the alpha 0 baseline of that seed ({row["baseline"]:.2f}), one seed, '
          f'binomial error: {against}. The teacher on the fly changes this verdict: '
          f'{"yes" if row["changes_verdict"] else "no"}.')


def _claim_line(claim):
  """A verdict with its test and precision: a paired difference over seeds, or one observation."""
  if 'p_value' not in claim:
    return (f'{claim["text"]}: {claim["mean"]:+.2f} points ({claim["test"]}): '
            f'**{claim["verdict"]}**.')
  pair = f'{claim["first"]} - {claim["second"]}: ' if 'first' in claim else ''
  return (f'{claim["text"]}: {pair}{claim["mean"]:+.2f} +- {claim["std"]:.2f} points over '
          f'{claim["n"]} seed(s) (two-sided paired p = {claim["p_value"]:.3f}): '
          f'**{claim["verdict"]}**.')


def penultimate_section(results_dir, where, table):
  """The paper's claim: with label smoothing, tighter clusters at equal distances."""
  lines = []
  lines += _heading(results_dir, where, table, f'### Penultimate layer: {table["model"]} on '
                    f'{table["dataset"]}, classes {table["classes"]} ({_label(where)})')
  lines += ['Paper (Figure 1): with label smoothing the clusters are tighter and equidistant '
            '(a regular triangle).', '']
  lines += _table_head(['panel', 'mean spread / mean distance',
                        'equidistance (std / mean of distances)'])
  for name, stats in table['panels'].items():
    lines.append(_row([name, f'{stats["spread_over_distance"]:.3f}',
                       f'{stats["equidistance"]:.3f}']))
  lines.append('')
  return lines


def mutual_information_section(results_dir, where, table):
  """Figure 6: MI rises fast after initialization, then decays towards log 2, more so with
  label smoothing."""
  lines = []
  n = table['num_examples']
  lines += _heading(results_dir, where, table, f'### Mutual information: {table["model"]} on '
                    f'{table["dataset"]}, classes {table["classes"]}, N = {n} ({_label(where)})')
  lines += ['Paper (Figure 6): tiny at initialization, rises fast, then decays towards log 2 = '
            f'0.693 (more so with label smoothing); the estimate lies in [0, log N = '
            f'{math.log(n):.3f}].', '']
  lines += _table_head(['run', 'at step 0', 'peak (step)', 'final (step)', 'final - log 2'])
  for label, run in table['runs'].items():
    values, steps = run['mutual_information'], run['steps']
    peak = max(range(len(values)), key=values.__getitem__)
    lines.append(_row([label, f'{values[0]:.3f}', f'{values[peak]:.3f} ({steps[peak]})',
                       f'{values[-1]:.3f} ({steps[-1]})', f'{values[-1] - math.log(2):+.3f}']))
  lines.append('')
  if 'at_initialization' in table:
    init = table['at_initialization']
    values = init['mutual_information']
    lines += [f'At initialization alone ({len(values)} fresh networks, seeds '
              f'{init["seeds"][0]}-{init["seeds"][-1]}, the same draws): median '
              f'{statistics.median(values):.3f}, range {min(values):.3f} to {max(values):.3f} '
              '(' + ', '.join(f'{v:.3f}' for v in values) + ').', '']
  return lines


def translation_section(results_dir, where, table):
  """Table 3 (Transformer row) and the Figure 4 claims: label smoothing calibrates the next-token
  predictions and improves BLEU, but worsens NLL at every temperature."""
  lines = []
  paper = ref.TRANSLATION[ref.PAPER]
  s = table.get('summary')
  lines += _heading(results_dir, where, table,
                    f'### Translation ({_label(where)}): next-token ECE on '
                    'validation tokens, BLEU uncased intl')
  lines += _table_head(['Table 3', 'this project', f'{ref.PAPER} (WMT14 EN-DE)'])
  if s:
    lines += [_row(['hard targets', f'{s["hard_targets_ece"]:.3f}',
                    f'{paper["hard_targets_ece"]:.3f}']),
              _row(['temperature scaled', _ece_at_t(*s['temperature_scaled']),
                    _ece_at_t(*paper['temperature_scaled'])]),
              _row(['label smoothing', _ece_at_alpha(*s['label_smoothing']),
                    _ece_at_alpha(*paper['label_smoothing'])])]
    if 'temperature_scaled_held_out' in s:  # fitted on one half of the sentences, both ways
      ece, (t_even, t_odd), bleu = s['temperature_scaled_held_out']
      lines.append(_row(['temperature scaled, held out (halves)',
                         f'{ece:.3f} (T {t_even:.2f} / {t_odd:.2f}; BLEU {bleu:.2f})', '-']))
  lines += ['', *_table_head(['run', 'T', 'BLEU validation', 'BLEU test', 'NLL/token', 'ECE',
                              'token accuracy (%)'])]
  for row in table['rows']:
    lines.append(_row([f'alpha={row["alpha"]:g}', f'{row["temperature"]:.2f}',
                       f'{row["bleu_validation"]:.2f}', f'{row["bleu_test"]:.2f}',
                       f'{row["nll"]:.3f}', f'{row["ece"]:.3f}',
                       f'{100 * row["accuracy"]:.2f}']))
  lines += ['', 'BLEU signatures: ' + '; '.join(
      f'{k}: {v}' for k, v in table.get('bleu_signatures', {}).items())]
  if s and 'claims' in s:
    lines += ['', f'Paper claims (seed {table.get("seed", 0)}):', '']
    claims, across = translation_rules.recorded_claims(table)  # current rules, stored numbers
    lines += translation_rules.claim_lines(claims)
    if across:
      lines += ['', f'Across seeds {across["seeds"]} (paired by seed):', '']
      lines += translation_rules.seed_claim_lines(across)
  lines.append('')
  return lines


def _seed_test(claim):
  """A summarize_seeds claim's verdict with its test and precision."""
  if claim['n'] < 2:
    return f'**{claim["verdict"]}** ({claim["mean"]:+.2f}, one seed)'
  return (f'**{claim["verdict"]}** (paired t-test over {claim["n"]} seeds: {claim["mean"]:+.2f} '
          f'+- {claim["std"]:.2f}, p = {claim["p_value"]:.3f})')


def _observed(text):
  return f'observed only (one run, no precision computed): {text}'


def accuracy_claims(table):
  rows = {r['alpha']: r for r in table['rows']}
  smoothed = min((a for a in rows if a > 0), key=lambda a: abs(a - 0.1), default=None)
  if 0.0 not in rows or smoothed is None:
    return []
  d = rows[smoothed]['accuracy'] - rows[0.0]['accuracy']
  return [('Table 2: label smoothing leaves accuracy about unchanged (e.g. AlexNet 86.8 / 86.7)',
           _observed(f'alpha {smoothed:g} minus alpha 0: {d:+.2f} points, '
                     f'{rows[0.0]["num_seeds"]} seed(s)'))]


def calibration_claims(table):
  s = table.get('summary', {})
  if not s.get('label_smoothing') or not s.get('temperature_scaled'):
    return []
  found = calibration_table.claims(s)
  if found:
    return [(f'Table 3: {c["text"]}', f'**{c["verdict"]}** ({c["test"]}: {c["observed"]})')
            for c in found]
  ls, ts = s['label_smoothing'], s['temperature_scaled']
  return [('Table 3 / Figure 2: label smoothing calibrates about as well as temperature scaling',
           _observed(f'ECE {s["hard_targets_ece"]:.3f} hard targets, {ts["ece"]:.3f} '
                     f'temperature scaled (T {ts["temperature"]:.2f}), {ls["ece"]:.3f} with the '
                     f'best alpha trained ({ls["alpha"]:g})'))]


def distillation_claims(table):
  return [(f'Table 4: {c["text"]}', _seed_test(c))
          for c in table['summary'].get('claims', []) if c['n'] > 1]


def _contrast_test(claim):
  """A Figure 5 contrast's verdict with its test: paired over seeds, or one seed's."""
  if 'p_value' in claim:
    return _seed_test(claim)
  return f'**{claim["verdict"]}** ({claim["test"]}: {claim["mean"]:+.2f})'


def cifar10_distillation_claims(table):
  found = figure5.findings(table['points'], table['split'])
  out = [(f'Figure 5: {found[k]["text"]}', f'**{found[k]["verdict"]}** ({found[k]["test"]}: '
          f'{found[k]["observed"]})')
         for k in ('teacher_improves', 'every_temperature_beats_baseline') if k in found]
  for c in found['smoothed_at_matched_gamma'] + (found['paired'] or {}).get('claims', []):
    out.append((f'Figure 5: {c["text"]}', _contrast_test(c)))
  return out


def cause_analysis_table(results_dir):
  """Figure 5's key contrast (the best temperature's student against the alpha 0 student
  baseline) of every CIFAR-10 distillation result, beside the settings the results differ in
  and the replication's run: a setting changes the verdict when two rows that differ in it
  alone disagree."""
  rows = []
  for kind, where, result in _results(results_dir, [figure5.RESULT]):
    found = figure5.key_contrast_summary(result, os.path.join(results_dir, where))
    if not found:
      continue
    link = _section_link(results_dir, kind, where, result)
    teacher = (f'{found["teacher_steps"]:,} steps, {found["teacher_accuracy"]:.2f}%'
               if found['teacher_steps'] else '-')
    student = [link, teacher, f'{found["student_steps"]:,}']
    rows.append(_row(student + [found['teacher_outputs'].replace('_', ' '),
                                f'{found["temperature"]:g}', _contrast_test(found['claim'])]))
    for fly in found['on_the_fly']:
      c = fly['on_the_fly_against_baseline']
      rows.append(_row(student + ['on the fly', f'{fly["temperature"]:g}',
                                  f'**{c["verdict"]}** (seed {fly["seed"]}, one run each: '
                                  f'{c["mean"]:+.2f}, +-{verdicts.Z_95 * c["se"]:.2f} binomial)']))
  if not rows:
    return []
  r = ref.DISTILLATION_CIFAR10_KEY_CONTRAST[ref.REPLICATION]
  rows.append(_row([
      f'{ref.REPLICATION} (official CIFAR-10, all 50,000 training images, test split)',
      f'{r["teacher_steps"]:,} steps, {r["teacher_accuracy"]:.1f}%', f'{r["student_steps"]:,}',
      r['teacher_outputs'].replace('_', ' '), f'{r["temperature"]:g}',
      f'about {r["student"] - r["baseline"]:+.1f} ({r["student"]:.1f} against '
      f'{r["baseline"]:.1f}; one run, read off its figure, no test)']))
  return ['## What moves the key contrast (CIFAR-10 distillation)', '',
          'Figure 5\'s key contrast in every CIFAR-10 distillation result: the best '
          'temperature\'s student minus the alpha 0 student baseline (points, the split each '
          'result plots), beside the settings the results differ in. A setting changes the '
          'verdict when two rows that differ in it alone disagree.', '',
          *_table_head(['result', 'hard-target teacher (steps, accuracy)', 'student steps',
                        'teacher outputs', 'T', 'student minus baseline: verdict (test)']),
          *rows, '']


def penultimate_claims(table):
  panels = table['panels']
  train = sorted(k for k in panels if k.endswith('train'))
  if len(train) < 2:
    return []
  return [('Figure 1: label smoothing makes the clusters tighter and equidistant',
           _observed(', '.join(f'{k}: spread/distance {panels[k]["spread_over_distance"]:.3f}, '
                               f'equidistance {panels[k]["equidistance"]:.3f}' for k in train)))]


def mutual_information_claims(table):
  finals = ', '.join(f'{label}: final - log 2 {run["mutual_information"][-1] - math.log(2):+.3f}'
                     for label, run in table['runs'].items())
  return [('Figure 6: the mutual information rises, then decays towards log 2, more so with '
           'label smoothing', _observed(finals))]


def translation_claims(table):
  if 'claims' not in table.get('summary', {}):
    return []
  claims, across = translation_rules.recorded_claims(table)
  if across:
    return [(f'Figure 4 / Table 3: {c["text"]}', _seed_test(c)) for c in across['claims']]
  # One seed has no seed spread: its numbers are observations (the seed section tests them).
  return [(f'Figure 4 / Table 3: {c["claim"]}', _observed(c['evidence'])) for c in claims]


# kind name -> (the Kind its section declares, its section's lines in the report, its rows of
# the claims table), in the order the report shows the sections
SECTIONS = {
    'accuracy': (sweep.ACCURACY, accuracy_section, accuracy_claims),
    'penultimate': (penultimate.RESULT, penultimate_section, penultimate_claims),
    'calibration': (calibration_table.RESULT, calibration_section, calibration_claims),
    'distillation_mnist': (table4.TABLE4, distillation_section, distillation_claims),
    'distillation_cifar10': (figure5.RESULT, cifar10_distillation_section,
                             cifar10_distillation_claims),
    'mutual_information': (mi_record.FIGURE6, mutual_information_section,
                           mutual_information_claims),
    'translation': (translation_rules.RESULT, translation_section, translation_claims)}
KINDS = tuple(kind for kind, _, _ in SECTIONS.values())


def _anchor(title):
  """GitHub's anchor of a markdown heading."""
  text = re.sub(r'[^\w\- ]', '', title.lstrip('#').strip().lower())
  return '#' + text.replace(' ', '-')


def _section_link(results_dir, kind, where, result):
  """A markdown link to a result's section below: its folder, pointing at its title."""
  title = SECTIONS[kind][1](results_dir, where, result)[0]
  return f'[{where}]({_anchor(title)})'


def _note_phrase(results_dir, where, result):
  """The first bold phrase of the folder's NOTE.md: what the numbers are (data, schedule)."""
  note = next((line for line in _heading(results_dir, where, result, '')[2:3]
               if line.startswith('**')), '')
  return note.split('**')[1] if note.count('**') >= 2 else 'no NOTE.md: see the section'


def _setting(bold, result):
  """What the numbers are (`bold`: the NOTE.md's first bold phrase), the data and the seeds."""
  record = result['provenance']
  if not record.get('recorded', True):
    return bold
  data = ', '.join(f'{name} {identity}' for name, identity in record['data'].items())
  return f'{bold}; {data}; seeds {", ".join(map(str, record["seeds"]))}'


def claims_table(results_dir):
  """One row per claim of the paper checked by a result: the claim, our setting, the verdict
  with its test and precision, and a link to the section below. A result its NOTE.md calls
  superseded (a reading the project no longer uses) keeps its section but no rows."""
  lines = ['## The paper\'s claims at a glance', '',
           'Each verdict says what was tested and at what precision; "observed only" rows are '
           'numbers without a test. The sections below give every number.', '',
           *_table_head(['claim (paper)', 'our setting', 'verdict (test, precision)', 'section'])]
  superseded = []
  for kind, where, result in _results(results_dir, KINDS):
    claims = SECTIONS[kind][2]
    link = _section_link(results_dir, kind, where, result)
    phrase = _note_phrase(results_dir, where, result)
    if 'superseded' in phrase.lower():
      superseded.append(link)
      continue
    setting = _setting(phrase, result)
    for claim, verdict in claims(result):
      lines.append(_row([claim, setting, verdict, link]))
  if superseded:
    lines += ['', f'Superseded comparison runs, in their sections only: {", ".join(superseded)}.']
  return lines + ['']


def _single_seed_summary(result):
  """A distill_mnist result from before seeds were aggregated: one row per network."""
  if 'summary' not in result:
    result = dict(result, summary={'networks': {
        r['key']: {'mean': r['test_error'], 'std': 0.0, 'n': 1} for r in result['rows']}})
  return result


UPGRADES = {'distillation_mnist': _single_seed_summary}  # what the migration adds per kind


def write_section_markdown(output_dir, kind):
  """A section binary's own markdown (<result file>.md beside its result): the same renderer
  as the section's part of REPORT.md; returns the text."""
  section, render, _ = SECTIONS[kind]
  text = '\n'.join(render(output_dir, '.', section_results.read(output_dir, section)))
  run_files.write_text(os.path.join(output_dir, os.path.splitext(section.filename)[0] + '.md'),
                       text + '\n')
  return text


def section_lines(results_dir, kinds=tuple(SECTIONS)):
  """The report's lines for every result of these kinds (names) below results_dir."""
  lines = []
  for kind, where, result in _results(results_dir, [SECTIONS[k][0] for k in kinds]):
    lines += SECTIONS[kind][1](results_dir, where, result)
  return lines


def _results(results_dir, kinds):
  """section_results.read_all in the report's order: within a kind, the sections with the
  longest teacher schedule first (Figure 5's hard teacher, Figure 6's longest record: the
  paper's 64k steps before a reduced run), then by folder."""
  names = [kind.name for kind in kinds]

  def order(found):
    kind, where, result = found
    steps = 0
    if kind == figure5.RESULT.name:
      steps = figure5.teacher_steps(result, os.path.join(results_dir, where))
    elif kind == mi_record.FIGURE6.name:
      steps = max(run['steps'][-1] for run in result['runs'].values())
    return names.index(kind), -steps

  return sorted(section_results.read_all(results_dir, kinds), key=order)


def build_report(results_dir):
  return '\n'.join(['# Results beside the paper and the replication', '',
                    f'Paper: {ref.PAPER}. Replication: {ref.REPLICATION}.', '',
                    *claims_table(results_dir), *cause_analysis_table(results_dir),
                    '## Sections', '',
                    *section_lines(results_dir)])


def main(argv):
  del argv
  if not run_files.gfile.isdir(FLAGS.results_dir):
    raise ValueError(f'--results_dir {FLAGS.results_dir} does not exist; run a section first.')
  if FLAGS.migrate:
    for path in section_results.migrate(FLAGS.results_dir, KINDS, UPGRADES):
      print(f'migrated {path}')
  report = build_report(FLAGS.results_dir)
  print(report)
  if FLAGS.output:
    run_files.write_text(FLAGS.output, report + '\n')


if __name__ == '__main__':
  common.run(main)
