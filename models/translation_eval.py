"""What the paper measured on the Transformer: teacher-forced next-token accuracy, NLL and ECE
over the real target tokens (through `calibration`, so token ECE is calibration.ece on the
flattened real tokens) at each temperature, and BLEU of beam-search translations."""
import numpy as np
import sacrebleu
from sacrebleu import significance

import calibration
from data import translation
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
