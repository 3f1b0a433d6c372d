"""Outputs of the translation section (experiments.translation) from its runs' evaluations.

Each run is evaluated once into its run directory (translation_eval.json, hypotheses/; by
models.translation_eval.evaluate_model, at the end of its training or here); the section
directory gets translation.json (Table 3 row, BLEU), Figure 3
(reliability_translation.*) and Figure 4 (figure4.*).
"""
import dataclasses
import os

from data import translation
from data.run_directory import run_files, section_results
from distillation import seeds
from experiments import common
from models import translation_eval, translation_training
from visualization import reliability
from visualization import translation as figure

RESULT = section_results.Kind('translation', 'translation.json',
                              ('figure4.png', 'reliability_translation.png'))


def _bleu_significance(hard, smoothed, max_sentences):
  """Paired bootstrap of BLEU at T = 1, smoothed against hard targets, per split."""
  _, config, data_dir = hard['_run']
  out = {}
  for split in ('validation', 'test'):
    references = translation.read_parallel(config.dataset, split, data_dir)[1][:max_sentences]
    hard_hypotheses, smoothed_hypotheses = (
        translation_eval.read_hypotheses(translation_eval.hypotheses_path(e['_run'][0], split, 1.0))
        for e in (hard, smoothed))
    out[split] = translation_eval.paired_bleu_bootstrap(hard_hypotheses, smoothed_hypotheses,
                                                        references)
  return out


def claim_lines(claims):
  """Markdown bullets of paper_claims' verdicts (experiments.report)."""
  return [f'- {c["claim"]}: **{"holds" if c["holds"] else "does not hold"}** ({c["evidence"]})'
          for c in claims]


def paper_claims(hard, smoothed, significance):
  """The paper's Section 3 / Figure 4 claims checked on two evaluations: [{claim, holds,
  evidence}]. BLEU on the validation set as the paper's; test2016 and bootstrap beside it."""

  def best(e):
    row = max(e['validation_bleu'], key=lambda r: r['uncased_intl']['score'])
    return f'{row["uncased_intl"]["score"]:.2f} (T={row["temperature"]:.2f})'

  ece = [_at(e['tokens']['sweep'], 1.0)['ece'] for e in (hard, smoothed)]
  smoothed_nll = {r['temperature']: r['nll'] for r in smoothed['tokens']['sweep']}
  nll_gaps = [(r['temperature'], smoothed_nll[r['temperature']] - r['nll'])
              for r in hard['tokens']['sweep'] if r['temperature'] in smoothed_nll]
  smallest = min(nll_gaps, key=lambda g: g[1])
  fitted = hard['tokens']['fitted_temperature']
  gain = _bleu(hard, fitted) - _bleu(hard, 1.0)
  ls_gain = _bleu(smoothed, 1.0) - _bleu(hard, 1.0)
  val, test = significance['validation'], significance['test']
  return [
      {'claim': 'label smoothing calibrates the next-token predictions better (paper ECE 0.019 '
                'against 0.056)', 'holds': ece[1] < ece[0],
       'evidence': f'ECE at T=1 {ece[1]:.3f} against {ece[0]:.3f}'},
      {'claim': 'label smoothing gives better BLEU',
       'holds': _bleu(smoothed, 1.0) > _bleu(hard, 1.0),
       'evidence': f'validation BLEU at T=1 {_bleu(smoothed, 1.0):.2f} against '
                   f'{_bleu(hard, 1.0):.2f} (paired bootstrap p={val["p_value"]:.3f}); test2016 '
                   f'{test["system"]:.2f} against {test["baseline"]:.2f} '
                   f'(p={test["p_value"]:.3f}); best over temperatures {best(smoothed)} '
                   f'against {best(hard)}'},
      {'claim': 'label smoothing gives worse NLL at every temperature',
       'holds': all(g > 0 for _, g in nll_gaps),
       'evidence': f'NLL(alpha) - NLL(hard) > 0 at {sum(g > 0 for _, g in nll_gaps)} of '
                   f'{len(nll_gaps)} temperatures; smallest {smallest[1]:+.3f} at '
                   f'T={smallest[0]:.2f}'},
      {'claim': "temperature scaling improves the hard-target BLEU only slightly, compared with "
                "label smoothing's gain", 'holds': gain < ls_gain,
       'evidence': f'validation BLEU gain of temperature scaling {gain:+.2f} (T={fitted:.2f}) '
                   f'against label smoothing\'s {ls_gain:+.2f} (one seed: no precision; see the '
                   'paired verdict across seeds)'},
  ]


def _seed_values(hard, smoothed):
  """One seed's figures behind paper_claims, as {network: value} for distillation.seeds."""
  fitted = hard['tokens']['fitted_temperature']
  values = {}
  for name, e in (('hard targets', hard), ('label smoothing', smoothed)):
    values[f'ECE at T=1, {name}'] = _at(e['tokens']['sweep'], 1.0)['ece']
    values[f'validation BLEU at T=1, {name}'] = _bleu(e, 1.0)
    values[f'test BLEU at T=1, {name}'] = _bleu(e, 1.0, 'test_bleu')
    values[f'NLL at the best T, {name}'] = min(r['nll'] for r in e['tokens']['sweep'])
  values['validation BLEU at the fitted T, hard targets'] = _bleu(hard, fitted)
  return values


def seed_claims(evaluations, alpha):
  """The paper's claims across seeds: alpha against hard targets, paired by seed (the same
  initialization and batch order), with distillation.seeds' paired t-test."""
  by_seed = {}
  for e in evaluations:
    by_seed.setdefault(e['_run'][1].seed, {})[e['alpha']] = e
  return seeds.summarize_seeds(
      {seed: _seed_values(runs[0.0], runs[alpha]) for seed, runs in by_seed.items()
       if 0.0 in runs and alpha in runs}, SEED_CLAIMS)


def _seed_claim(text, quantity, first, second, sign):
  return {'text': text, 'first': f'{quantity}, {first}', 'second': f'{quantity}, {second}',
          'expected_sign': sign}


SEED_CLAIMS = [
    _seed_claim('label smoothing calibrates the next-token predictions better', 'ECE at T=1',
                'label smoothing', 'hard targets', -1),
    _seed_claim('label smoothing gives better BLEU (validation)', 'validation BLEU at T=1',
                'label smoothing', 'hard targets', 1),
    _seed_claim('label smoothing gives better BLEU (test2016)', 'test BLEU at T=1',
                'label smoothing', 'hard targets', 1),
    _seed_claim('label smoothing gives worse NLL, even at the best temperature',
                'NLL at the best T', 'label smoothing', 'hard targets', 1),
    # Label smoothing's gain minus temperature scaling's, both over hard targets at T = 1.
    {'text': "temperature scaling improves the hard-target BLEU only slightly, compared with "
             "label smoothing's gain (the difference: label smoothing's validation BLEU gain "
             "minus temperature scaling's)",
     'first': 'validation BLEU at T=1, label smoothing',
     'second': 'validation BLEU at the fitted T, hard targets', 'expected_sign': 1}]


def recorded_claims(result):
  """paper_claims and seed_claims of a recorded section result (translation.json) under the
  current rules, from the numbers it stored: (claims, across_seeds or None)."""
  summary = result['summary']
  curves = {c['alpha']: c for c in result['curves']}
  claims = paper_claims(curves[0.0], curves[summary['label_smoothing'][1]],
                        summary['bleu_significance'])
  across = summary.get('across_seeds')
  if across:
    networks = across['networks']
    across = seeds.summarize_seeds(
        {seed: {k: v['per_seed'][i] for k, v in networks.items()}
         for i, seed in enumerate(across['seeds'])}, SEED_CLAIMS)
  return claims, across


def seed_claim_lines(summary):
  """Markdown of seed_claims: per claim the mean paired difference, its spread and verdict."""
  lines = []
  for c in summary['claims']:
    per_seed = ', '.join(f'{d:+.3f}' for d in c['per_seed'])
    lines.append(f'- {c["text"]}: **{c["verdict"]}** (difference {c["mean"]:+.3f} +/- '
                 f'{c["std"]:.3f} over {c["n"]} seeds: {per_seed}; paired t-test '
                 f'p={c["p_value"]:.3f})')
  return lines


def _bleu(evaluation, temperature, key='validation_bleu'):
  """BLEU (uncased intl) of an evaluation's decode nearest to `temperature`."""
  return _at(evaluation[key], temperature)['uncased_intl']['score']


def _at(rows, temperature):
  return min(rows, key=lambda r: abs(r['temperature'] - temperature))


def evaluate_and_write(run_dirs, output_dir, settings, data_dir=None):
  """Evaluates every run and writes the section's result and figures (its markdown is
  experiments.report's rendering of that result)."""
  seeds = [translation_training.finished_config(d)[0].seed for d in run_dirs]
  first_seed = min(seeds)  # only its runs' logits are drawn
  every_seed = [translation_training.evaluate_run(d, settings, data_dir,
                                                 with_logits=s == first_seed)
                for d, s in zip(run_dirs, seeds)]
  evaluations = sorted((e for e in every_seed if e['_run'][1].seed == first_seed),
                       key=lambda e: e['alpha'])  # the tables and figures: the first seed
  run_files.make_dir(output_dir)
  hard = next((e for e in evaluations if e['alpha'] == 0.0), None)
  smoothed = [e for e in evaluations if e['alpha'] > 0]
  table = []
  for e in evaluations:
    fitted = e['tokens']['fitted_temperature']
    for t in ([1.0, fitted] if e is hard else [1.0]):
      tokens = _at(e['tokens']['sweep'], t)
      row = {'alpha': e['alpha'], 'temperature': t,
             **{k: tokens[k] for k in ('accuracy', 'nll', 'ece')},
             'bleu_validation': _at(e['validation_bleu'], t)['uncased_intl']['score'],
             'bleu_test': _at(e['test_bleu'], t)['uncased_intl']['score'],
             'bleu_test_cased_13a': _at(e['test_bleu'], t)['cased_13a']['score']}
      table.append(row)
  summary = {}
  if hard and smoothed:
    best = min(smoothed, key=lambda e: _at(e['tokens']['sweep'], 1.0)['ece'])
    summary = {'hard_targets_ece': _at(hard['tokens']['sweep'], 1.0)['ece'],
               'temperature_scaled': (_at(hard['tokens']['sweep'],
                                          hard['tokens']['fitted_temperature'])['ece'],
                                      hard['tokens']['fitted_temperature']),
               'label_smoothing': (_at(best['tokens']['sweep'], 1.0)['ece'], best['alpha'])}
    cross = hard['tokens']['cross_fitted']
    summary['temperature_scaled_held_out'] = (cross['ece'], cross['temperatures'],
                                              cross['bleu']['uncased_intl']['score'])
    summary['bleu_significance'] = _bleu_significance(hard, best, settings.max_sentences)
    summary['claims'] = paper_claims(hard, best, summary['bleu_significance'])
    if len({e['_run'][1].seed for e in every_seed}) > 1:
      summary['across_seeds'] = seed_claims(every_seed, best['alpha'])
  signatures = {k: v['signature'] for k, v in evaluations[0]['test_bleu'][0].items()
                if isinstance(v, dict)}
  figure.temperature_figure(
      [(f'alpha={e["alpha"]:g}', [r['temperature'] for r in e['validation_bleu']],
        [r['uncased_intl']['score'] for r in e['validation_bleu']],
        [_at(e['tokens']['sweep'], r['temperature'])['ece'] for r in e['validation_bleu']],
        [_at(e['tokens']['sweep'], r['temperature'])['nll'] for r in e['validation_bleu']])
       for e in evaluations], os.path.join(output_dir, 'figure4'),
      'Transformer: BLEU, next-token ECE and NLL against temperature (validation)')
  if hard:
    curves = [('hard targets, T=1', *hard['_logits'], 1.0),
              (f'hard targets, T={hard["tokens"]["fitted_temperature"]:.2f}', *hard['_logits'],
               hard['tokens']['fitted_temperature'])]
    curves += [(f'alpha={e["alpha"]:g}', *e['_logits'], 1.0) for e in smoothed]
    reliability.plot_reliability(curves, os.path.join(output_dir, 'reliability_translation'),
                                 'Transformer next-token predictions (validation)')
  section_results.write(output_dir, RESULT, {
      'run_dirs': [run_files.relative_to(d, output_dir) for d in run_dirs], 'seed': first_seed,
      'settings': dataclasses.asdict(settings), 'rows': table,
      'summary': summary, 'bleu_signatures': signatures,
      'curves': [{k: e[k] for k in ('alpha', 'tokens', 'validation_bleu', 'test_bleu')}
                 for e in evaluations]}, common.provenance(run_dirs, data_dir))
