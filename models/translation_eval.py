"""What the paper measured on the Transformer: teacher-forced next-token accuracy, NLL and ECE
over the real target tokens (through `calibration`, so token ECE is calibration.ece on the
flattened real tokens) at each temperature, and BLEU of beam-search translations; and a trained
run's whole evaluation (evaluate_model: translation_eval.json and hypotheses/ in its run
directory)."""
import dataclasses
import os
import time

import numpy as np
import sacrebleu
from sacrebleu import significance

import calibration
from data import translation
from data.run_directory import run_files
from models import beam_search

# The paper's Figure 4 sweep: 0.5 to 2.0 in steps of 0.1.
TEMPERATURES = tuple(np.round(np.arange(0.5, 2.001, 0.1), 2))


def token_logits(model, sources, targets, batch_size=100):
  """(logits [N real tokens, V] float32, labels [N]): next-token predictions, teacher-forced,
  the network in inference mode; padding positions are left out."""
  logits, labels = [], []
  for (source, decoder_input), target in translation.evaluation_batches(sources, targets,
                                                                        batch_size):
    out = model((source, decoder_input), training=False).numpy()
    real = target != translation.PAD
    logits.append(out[real])
    labels.append(target[real])
  return np.concatenate(logits), np.concatenate(labels).astype(np.int64)


def token_metrics(logits, labels, sentences, temperatures=TEMPERATURES,
                  num_bins=calibration.NUM_BINS):
  """Accuracy, NLL per token and ECE at every temperature, the NLL-fitted temperature (fit
  these logits only if they are a held-out split, the validation set), and the same scaling
  scored out of sample: fitted on half of the sentences (`sentences`: each token's sentence
  index), scored on the other half, both ways."""
  fitted = calibration.fit_temperature(logits, labels, split='validation')
  sweep = calibration.temperature_sweep(logits, labels, sorted(set(temperatures) | {fitted}),
                                        num_bins)
  return {'fitted_temperature': fitted, 'sweep': sweep,
          'cross_fitted': calibration.cross_fitted(logits, labels, sentences, num_bins)}


def translate(model, vocab, sources, beam=4, alpha=0.6, temperature=1.0, batch_size=64,
              eos_rule='t2t'):
  """Detokenized beam-search translations of the source id sequences, in order (eos_rule: see
  beam_search)."""
  order = np.argsort([len(s) for s in sources], kind='stable')  # similar lengths per batch
  decoded = [None] * len(sources)
  for start in range(0, len(order), batch_size):
    rows = order[start:start + batch_size]
    batch = [sources[i] for i in rows]
    padded = np.zeros((len(batch), max(len(s) for s in batch)), np.int32)
    for i, s in enumerate(batch):
      padded[i, :len(s)] = s
    for i, ids in zip(rows, beam_search.beam_search(model, padded, beam, alpha, temperature,
                                                    eos_rule=eos_rule)):
      decoded[i] = ids
  return vocab.decode(decoded)


BLEU_VARIANTS = (('uncased_intl', dict(lowercase=True, tokenize='intl')), ('cased_13a', {}))


def bleu(hypotheses, references):
  """Uncased BLEU with the international tokenizer (closest to t2t_bleu; the headline) and
  sacrebleu's default cased 13a BLEU, each with its signature."""
  out = {}
  for name, kwargs in BLEU_VARIANTS:
    metric = sacrebleu.metrics.BLEU(**kwargs)
    score = metric.corpus_score(hypotheses, [references])
    out[name] = {'score': score.score, 'signature': str(metric.get_signature())}
  return out


def paired_bleu_bootstrap(baseline, system, references, resamples=1000):
  """sacrebleu's paired bootstrap resampling (Koehn 2004) of the headline BLEU: do `system` and
  `baseline` differ on these sentences beyond the luck of the draw of the test set?

  Returns {'baseline', 'system': BLEU; 'p_value': two-sided, as Moses'
  bootstrap-hypothesis-difference-significance.pl (sacrebleu's seed, 12345 unless
  SACREBLEU_SEED says otherwise); 'system_mean', 'system_ci': its bootstrap mean and 95%
  half-width}. Identical outputs are reported as significant by that convention; compare scores.
  """
  metric = sacrebleu.metrics.BLEU(**dict(BLEU_VARIANTS)['uncased_intl'])
  _, scores = significance.PairedTest(
      [('baseline', baseline), ('system', system)], {'BLEU': metric}, [references],
      test_type='bs', n_samples=resamples)()
  base, result = scores['BLEU']
  return {'baseline': base.score, 'system': result.score, 'p_value': float(result.p_value),
          'system_mean': float(result.mean), 'system_ci': float(result.ci),
          'resamples': resamples}


EVAL = 'translation_eval.json'
HYPOTHESES = 'hypotheses'  # per run: {split}_T{temperature}.txt and decoding.json


@dataclasses.dataclass
class EvalSettings:
  """How a translation run is evaluated: temperatures of the token sweep and of BLEU, beam
  search, and how many sentences of each split."""
  temperatures: list
  bleu_temperatures: list
  beam_size: int = 4
  length_penalty: float = 0.6
  max_sentences: int = None
  eos_rule: str = 't2t'  # 't2t' or 'fairseq': models.beam_search.EOS_RULES


def split_pairs(config, split, vocab, data_dir, max_sentences):
  """(sources, targets as token ids, references as text) of the first max_sentences pairs."""
  english, german = translation.read_parallel(config.dataset, split, data_dir)
  english, german = english[:max_sentences], german[:max_sentences]
  sources, targets = translation.encode_pairs(vocab, english, german)
  return sources, targets, german


def hypotheses_path(run_dir, split, temperature):
  return os.path.join(run_dir, HYPOTHESES, f'{split}_T{temperature:.3f}.txt')


def read_hypotheses(path):
  with run_files.gfile.GFile(path, 'rb') as f:
    payload = f.read()
  try:
    return payload.decode()[:-1].split('\n')
  except UnicodeDecodeError as e:
    raise run_files.unreadable(path, f'not UTF-8 text: {e.reason} at byte {e.start}',
                               f'delete it and {EVAL} beside {HYPOTHESES}/, then rerun the '
                               'translation section: it decodes again') from None


def _decode(model, vocab, sources, references, settings, temperature, path, reuse):
  """BLEU of the beam-search translations at `temperature`; the hypotheses go to `path`.

  With `reuse`, hypotheses already at `path` (written whole, by rename) are scored instead of
  decoded again, so an evaluation killed between decodes resumes.
  """
  if reuse and run_files.gfile.exists(path):
    try:
      hypotheses = read_hypotheses(path)
    except run_files.RunDirError:
      hypotheses = []  # unreadable: decoded again below, and rewritten
    if len(hypotheses) == len(references):
      return bleu(hypotheses, references)
  start = time.perf_counter()
  hypotheses = translate(model, vocab, sources, settings.beam_size,
                                          settings.length_penalty, temperature,
                                          eos_rule=settings.eos_rule)
  seconds = time.perf_counter() - start
  run_files.write_bytes(path, ('\n'.join(hypotheses) + '\n').encode())
  return {**bleu(hypotheses, references), 'decode_seconds': seconds}


def _cross_fitted_bleu(model, vocab, sources, references, settings, temperatures, run_dir,
                       reuse):
  """BLEU of the validation sentences decoded out of sample: the even ones at the temperature
  fitted on the odd ones' tokens (temperatures[1]) and the odd ones at temperatures[0]."""
  hypotheses = [None] * len(sources)
  for half, temperature in ((0, temperatures[1]), (1, temperatures[0])):
    rows = range(half, len(sources), 2)
    path = os.path.join(run_dir, HYPOTHESES, f'validation_half{half}_T{temperature:.3f}.txt')
    _decode(model, vocab, [sources[i] for i in rows], [references[i] for i in rows], settings,
            temperature, path, reuse)
    for i, hypothesis in zip(rows, read_hypotheses(path)):
      hypotheses[i] = hypothesis
  return bleu(hypotheses, references)


def _decoding_settings(hypotheses_dir, settings):
  """Whether hypotheses/ holds decodes made with these settings; records them from now on."""
  path = os.path.join(hypotheses_dir, 'decoding.json')
  wanted = {k: getattr(settings, k)
            for k in ('beam_size', 'length_penalty', 'max_sentences', 'eos_rule')}
  run_files.make_dir(hypotheses_dir)
  if run_files.gfile.exists(path) and run_files.read_json(path) == wanted:
    return True
  run_files.write_json(path, wanted)
  return False


def evaluate_model(model, vocab, config, run_dir, settings, data_dir=None, log=print):
  """Next-token calibration over the temperatures and BLEU of beam-search translations (the
  validation split at T = 1, the fitted T and settings.bleu_temperatures, each half at the T
  fitted on the other; the test split at T = 1 and the fitted T), written to run_dir's
  translation_eval.json with the hypotheses; returns it, with the validation logits under
  '_logits'. Decodes already written with the same settings are scored, not made again."""
  started = time.perf_counter()
  sources, targets, references = split_pairs(config, 'validation', vocab, data_dir,
                                        settings.max_sentences)
  logits, labels = token_logits(model, sources, targets)
  log(f'{run_dir}: {len(labels)} validation tokens', flush=True)
  sentences = np.repeat(np.arange(len(targets)), [len(t) for t in targets])  # tokens in order
  result = {'settings': dataclasses.asdict(settings), 'alpha': config.label_smoothing,
            'tokens': token_metrics(logits, labels, sentences, settings.temperatures)}
  fitted = result['tokens']['fitted_temperature']
  reuse = _decoding_settings(os.path.join(run_dir, HYPOTHESES), settings)
  result['validation_bleu'] = []
  for t in sorted(set(settings.bleu_temperatures) | {1.0, fitted}):
    scores = _decode(model, vocab, sources, references, settings, t,
                     hypotheses_path(run_dir, 'validation', t), reuse)
    result['validation_bleu'].append({'temperature': t, **scores})
    log(f'  validation T={t:.3f}: BLEU {scores["uncased_intl"]["score"]:.2f}'
        + (f' ({scores["decode_seconds"]:.0f} s)' if 'decode_seconds' in scores else ''),
        flush=True)
  cross = result['tokens']['cross_fitted']
  cross['bleu'] = _cross_fitted_bleu(model, vocab, sources, references, settings,
                                     cross['temperatures'], run_dir, reuse)
  log(f'  validation, each half at the T fitted on the other ({cross["temperatures"][0]:.3f} / '
      f'{cross["temperatures"][1]:.3f}): BLEU {cross["bleu"]["uncased_intl"]["score"]:.2f}',
      flush=True)
  test_sources, _, test_references = split_pairs(config, 'test', vocab, data_dir,
                                            settings.max_sentences)
  result['test_bleu'] = [
      {'temperature': t, **_decode(model, vocab, test_sources, test_references, settings, t,
                                   hypotheses_path(run_dir, 'test', t), reuse)}
      for t in sorted({1.0, fitted})]
  # the evaluation time per model (decodes reused after a kill are not in it)
  result['evaluation_seconds_this_session'] = round(time.perf_counter() - started, 1)
  run_files.write_json(os.path.join(run_dir, EVAL), result)
  return {**result, '_logits': (logits, labels)}


def headline(result):
  """The metrics of a run's results.json from its evaluation: at T = 1, next-token accuracy,
  NLL and ECE and BLEU (uncased intl) on each split, and the fitted temperature."""
  tokens = next(r for r in result['tokens']['sweep'] if r['temperature'] == 1.0)
  bleu = lambda rows: next(r for r in rows if r['temperature'] == 1.0)['uncased_intl']['score']
  return {**{k: tokens[k] for k in ('accuracy', 'nll', 'ece')},
          'fitted_temperature': result['tokens']['fitted_temperature'],
          'bleu_validation': bleu(result['validation_bleu']),
          'bleu_test': bleu(result['test_bleu'])}
