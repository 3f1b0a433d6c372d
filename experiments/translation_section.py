"""Outputs of the translation section (experiments.translation) from its runs' evaluations.

Each run is evaluated once into its run directory (translation_eval.json, hypotheses/; by
models.translation_eval.evaluate_model, at the end of its training or here); the section
directory gets translation.json (Table 3 row, BLEU, the claims of models.translation_claims),
Figure 3 (reliability_translation.*) and Figure 4 (figure4.*). It draws, so it sits above
visualization.
"""
import dataclasses
import os

from data.run_directory import run_files, section_results
from experiments import common
from models import translation_claims as claims
from models import translation_training
from visualization import reliability
from visualization import translation as figure


def evaluate_and_write(run_dirs, output_dir, settings, data_dir=None):
  """Evaluates every run and writes the section's result and figures (its markdown is
  experiments.report's rendering of that result)."""
  at = claims.at_temperature
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
      tokens = at(e['tokens']['sweep'], t)
      row = {'alpha': e['alpha'], 'temperature': t,
             **{k: tokens[k] for k in ('accuracy', 'nll', 'ece')},
             'bleu_validation': at(e['validation_bleu'], t)['uncased_intl']['score'],
             'bleu_test': at(e['test_bleu'], t)['uncased_intl']['score'],
             'bleu_test_cased_13a': at(e['test_bleu'], t)['cased_13a']['score']}
      table.append(row)
  summary = {}
  if hard and smoothed:
    best = min(smoothed, key=lambda e: at(e['tokens']['sweep'], 1.0)['ece'])
    summary = {'hard_targets_ece': at(hard['tokens']['sweep'], 1.0)['ece'],
               'temperature_scaled': (at(hard['tokens']['sweep'],
                                          hard['tokens']['fitted_temperature'])['ece'],
                                      hard['tokens']['fitted_temperature']),
               'label_smoothing': (at(best['tokens']['sweep'], 1.0)['ece'], best['alpha'])}
    cross = hard['tokens']['cross_fitted']
    summary['temperature_scaled_held_out'] = (cross['ece'], cross['temperatures'],
                                              cross['bleu']['uncased_intl']['score'])
    summary['bleu_significance'] = claims.bleu_significance(hard, best, settings.max_sentences)
    summary['claims'] = claims.paper_claims(hard, best, summary['bleu_significance'])
    if len({e['_run'][1].seed for e in every_seed}) > 1:
      summary['across_seeds'] = claims.seed_claims(every_seed, best['alpha'])
  signatures = {k: v['signature'] for k, v in evaluations[0]['test_bleu'][0].items()
                if isinstance(v, dict)}
  figure.temperature_figure(
      [(f'alpha={e["alpha"]:g}', [r['temperature'] for r in e['validation_bleu']],
        [r['uncased_intl']['score'] for r in e['validation_bleu']],
        [at(e['tokens']['sweep'], r['temperature'])['ece'] for r in e['validation_bleu']],
        [at(e['tokens']['sweep'], r['temperature'])['nll'] for r in e['validation_bleu']])
       for e in evaluations], os.path.join(output_dir, 'figure4'),
      'Transformer: BLEU, next-token ECE and NLL against temperature (validation)')
  if hard:
    curves = [('hard targets, T=1', *hard['_logits'], 1.0),
              (f'hard targets, T={hard["tokens"]["fitted_temperature"]:.2f}', *hard['_logits'],
               hard['tokens']['fitted_temperature'])]
    curves += [(f'alpha={e["alpha"]:g}', *e['_logits'], 1.0) for e in smoothed]
    reliability.plot_reliability(curves, os.path.join(output_dir, 'reliability_translation'),
                                 'Transformer next-token predictions (validation)')
  section_results.write(output_dir, claims.RESULT, {
      'run_dirs': [run_files.relative_to(d, output_dir) for d in run_dirs], 'seed': first_seed,
      'settings': dataclasses.asdict(settings), 'rows': table,
      'summary': summary, 'bleu_signatures': signatures,
      'curves': [{k: e[k] for k in ('alpha', 'tokens', 'validation_bleu', 'test_bleu')}
                 for e in evaluations]}, common.provenance(run_dirs, data_dir))
