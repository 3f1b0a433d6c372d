"""The translation section's claims (paper Section 3 / Figure 4, Table 3's Transformer row)
from its runs' evaluations: one seed's checks (paper_claims), the paired checks across seeds
(seed_claims), and both recomputed from a recorded result under the current rules
(recorded_claims). experiments.translation_section draws the figures and writes the result."""
from calibration import verdicts
from data import translation
from data.run_directory import section_results
from models import translation_eval

RESULT = section_results.Kind('translation', 'translation.json',
                              ('figure4.png', 'reliability_translation.png'))


def bleu_significance(hard, smoothed, max_sentences):
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
  """Markdown bullets of paper_claims (experiments.report): one seed's observations, not
  verdicts (seed_claims tests them across seeds)."""
  return [f'- {c["claim"]}: {"as the paper" if c["holds"] else "not as the paper"} on this '
          f'seed, without a precision ({c["evidence"]})' for c in claims]


def paper_claims(hard, smoothed, significance):
  """The paper's Section 3 / Figure 4 claims checked on two evaluations: [{claim, holds,
  evidence}]. BLEU on the validation set as the paper's; test2016 and bootstrap beside it."""

  def best(e):
    row = max(e['validation_bleu'], key=lambda r: r['uncased_intl']['score'])
    return f'{row["uncased_intl"]["score"]:.2f} (T={row["temperature"]:.2f})'

  ece = [at_temperature(e['tokens']['sweep'], 1.0)['ece'] for e in (hard, smoothed)]
  smoothed_nll = {r['temperature']: r['nll'] for r in smoothed['tokens']['sweep']}
  nll_gaps = [(r['temperature'], smoothed_nll[r['temperature']] - r['nll'])
              for r in hard['tokens']['sweep'] if r['temperature'] in smoothed_nll]
  smallest = min(nll_gaps, key=lambda g: g[1])
  fitted = hard['tokens']['fitted_temperature']
  gain = bleu_at(hard, fitted) - bleu_at(hard, 1.0)
  ls_gain = bleu_at(smoothed, 1.0) - bleu_at(hard, 1.0)
  val, test = significance['validation'], significance['test']
  return [
      {'claim': 'label smoothing calibrates the next-token predictions better (paper ECE 0.019 '
                'against 0.056)', 'holds': ece[1] < ece[0],
       'evidence': f'ECE at T=1 {ece[1]:.3f} against {ece[0]:.3f}'},
      {'claim': 'label smoothing gives better BLEU',
       'holds': bleu_at(smoothed, 1.0) > bleu_at(hard, 1.0),
       'evidence': f'validation BLEU at T=1 {bleu_at(smoothed, 1.0):.2f} against '
                   f'{bleu_at(hard, 1.0):.2f} (paired bootstrap p={val["p_value"]:.3f}); test2016 '
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
                   f'against label smoothing\'s {ls_gain:+.2f}'},
  ]


def _seed_values(hard, smoothed):
  """One seed's figures behind paper_claims, as {network: value} for calibration.verdicts."""
  fitted = hard['tokens']['fitted_temperature']
  values = {}
  for name, e in (('hard targets', hard), ('label smoothing', smoothed)):
    values[f'ECE at T=1, {name}'] = at_temperature(e['tokens']['sweep'], 1.0)['ece']
    values[f'validation BLEU at T=1, {name}'] = bleu_at(e, 1.0)
    values[f'test BLEU at T=1, {name}'] = bleu_at(e, 1.0, 'test_bleu')
    values[f'NLL at the best T, {name}'] = min(r['nll'] for r in e['tokens']['sweep'])
  values['validation BLEU at the fitted T, hard targets'] = bleu_at(hard, fitted)
  return values


def seed_claims(evaluations, alpha):
  """The paper's claims across seeds: alpha against hard targets, paired by seed (the same
  initialization and batch order), with calibration.verdicts' paired t-test."""
  by_seed = {}
  for e in evaluations:
    by_seed.setdefault(e['_run'][1].seed, {})[e['alpha']] = e
  return verdicts.summarize_seeds(
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
    across = verdicts.summarize_seeds(
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


def bleu_at(evaluation, temperature, key='validation_bleu'):
  """BLEU (uncased intl) of an evaluation's decode nearest to `temperature`."""
  return at_temperature(evaluation[key], temperature)['uncased_intl']['score']


def at_temperature(rows, temperature):
  return min(rows, key=lambda r: abs(r['temperature'] - temperature))
