"""Beam search as tensor2tensor decodes: length penalty ((5 + length) / 6)^alpha, finished
hypotheses set aside (never extended), temperature applied to the logits before the
log-softmax at every step, and incremental decoding with cached keys and values.

Lengths count the end-of-sentence token. Each step ranks 2 * beam candidates; the candidates
that do not end the sentence refill the live beams in rank order. Which end-of-sentence
candidates finish a hypothesis is `eos_rule`: 't2t' (tensor2tensor's grow_finished, the paper's
decoder) takes every one of the 2 * beam, 'fairseq' only those ranked within the first `beam`
(so that beam 1 with alpha 0 is greedy decoding); either way a sentence keeps the `beam` best
finished by score. Decoding stops for a sentence once it holds `beam` finished hypotheses and no
live one could still beat the worst of them (its log-probability only falls, and the penalty is
at most that of `max_length`); tensor2tensor stops the batch once each sentence's worst finished
one, however few, beats that bound: the same best hypothesis. Padding is never generated.

The search is one tf.while_loop per batch on the device, no host round-trip per step; scores
accumulate in float64, as the previous numpy decoder's did, so rankings and ties match it.
"""
import numpy as np
import tensorflow as tf

from models.transformer import PAD

EOS = 1
# How many of the 2 * beam candidates of a step, in rank order, may finish, per unit of beam.
EOS_RULES = {'t2t': 2, 'fairseq': 1}


def length_penalty(length, alpha):
  return ((5.0 + length) / 6.0) ** alpha


def beam_search(model, source, beam=4, alpha=0.6, temperature=1.0, max_length=None,
                extra_length=50, eos_rule='t2t', fixed_steps=None):
  """Best hypothesis (list of ids, without EOS) for every row of `source` [B, S].

  max_length defaults to the source length + extra_length (tensor2tensor's decode_length),
  capped by the model's positions. eos_rule: 't2t' or 'fairseq' (above). `fixed_steps` N never
  ends a sentence (EOS is masked) and decodes exactly N steps, for timing the same work across
  decoders.
  """
  source = np.asarray(source, np.int32)
  if fixed_steps:
    if fixed_steps > model.max_length:
      raise ValueError(f'fixed_steps={fixed_steps} exceeds the model\'s {model.max_length} '
                       'positions.')
    max_length = fixed_steps
  else:
    max_length = min(max_length or source.shape[1] + extra_length, model.max_length)
  mask = np.zeros(model.vocab_size, np.float32)
  mask[[PAD, EOS] if fixed_steps else PAD] = -np.inf
  penalties = [length_penalty(length, alpha) for length in range(max_length + 1)]
  best = _compiled_search(model)(source, beam, max_length, penalties, temperature, mask,
                                 EOS_RULES[eos_rule] * beam).numpy()
  results = []
  for row in best:  # a finished hypothesis ends with EOS, a live one at max_length (or PAD)
    stops = np.flatnonzero((row == EOS) | (row == PAD))
    results.append(row[:stops[0] if stops.size else len(row)].tolist())
  return results


def _search(model, source, beam, max_length, penalties, temperature, mask, eos_ranks):
  """[B, max_length] ids: each sentence's best finished hypothesis and EOS (or, if none
  finished, its best live one), zero-padded. penalties[l]: the length penalty of length l;
  mask [V]: 0, or -inf for tokens never generated; an end of sentence ranked below eos_ranks
  among a step's 2 * beam candidates finishes a hypothesis. Finished slots not yet filled (and
  dead beams) score -inf."""
  batch, vocab = tf.shape(source)[0], model.vocab_size
  own_rows = tf.range(batch)[:, None] * beam
  neg_inf = tf.constant(-np.inf, tf.float64)
  ranks = tf.range(2 * beam)

  def step(t, alive, alive_logp, finished, finished_scores, done, state):
    last = tf.gather(alive, tf.maximum(t - 1, 0), axis=2)  # at t = 0 the empty rows: PAD
    logits, state = model.decode_step(tf.reshape(last, [-1]), t, state)
    logp = tf.nn.log_softmax(logits / temperature) + mask
    total = alive_logp[:, :, None] + tf.cast(tf.reshape(logp, [batch, beam, vocab]), tf.float64)
    scores, ids = tf.math.top_k(tf.reshape(total, [batch, beam * vocab]), 2 * beam)  # stable
    parent, token = ids // vocab, ids % vocab
    finite = scores > neg_inf
    ends = finite & tf.equal(token, EOS)
    # Live: the first `beam` non-EOS candidates in rank order (-inf if fewer: dead beams).
    kept = tf.argsort(tf.cast(~finite | ends, tf.int32), axis=1, stable=True)[:, :beam]
    alive_logp = tf.where(tf.gather(finite & ~ends, kept, batch_dims=1),
                          tf.gather(scores, kept, batch_dims=1), neg_inf)
    at_t = tf.one_hot(t, max_length, dtype=tf.int32)
    grown = tf.gather(alive, parent, batch_dims=1)  # the candidates' prefixes, t still empty
    kept_parent = tf.gather(parent, kept, batch_dims=1)
    alive = (tf.gather(grown, kept, batch_dims=1)
             + tf.gather(token, kept, batch_dims=1)[:, :, None] * at_t)
    # Finished: the best `beam` of the old ones and this step's (old first on ties).
    new = ends & (ranks < eos_ranks) & ~done[:, None]
    merged = tf.concat([finished_scores, tf.where(new, scores / penalties[t + 1], neg_inf)], 1)
    finished_scores, best = tf.math.top_k(merged, beam)
    finished = tf.gather(tf.concat([finished, grown + EOS * at_t], 1), best, batch_dims=1)
    worst = finished_scores[:, -1]
    done |= (worst > neg_inf) & (worst >= alive_logp[:, 0] / penalties[max_length])
    state = model.reorder(state, tf.reshape(own_rows + kept_parent, [-1]))
    return t + 1, alive, alive_logp, finished, finished_scores, done, state

  empty = tf.zeros([batch, beam, max_length], tf.int32)
  first_logp = tf.concat([tf.zeros([batch, 1], tf.float64), tf.fill([batch, beam - 1], neg_inf)],
                         1)  # one live beam per sentence at first
  start = (tf.constant(0), empty, first_logp, empty, tf.fill([batch, beam], neg_inf),
           tf.zeros([batch], tf.bool),
           model.start_decoding(source, max_length, beam))
  _, alive, _, finished, finished_scores, _, _ = tf.while_loop(
      lambda t, *loop: (t < max_length) & ~tf.reduce_all(loop[4]), step, start)  # loop[4]: done
  return tf.where((finished_scores[:, 0] > neg_inf)[:, None], finished[:, 0], alive[:, 0])


def _compiled_search(model):
  """_search as one tf.function per model, traced once: every argument is a tensor of any size
  (a batch shape, beam or length of its own would trace again)."""
  if not hasattr(model, '_compiled_beam_search'):
    scalar = lambda dtype: tf.TensorSpec([], dtype)
    model._compiled_beam_search = tf.function(  # pylint: disable=protected-access
        lambda *args: _search(model, *args),
        input_signature=[tf.TensorSpec([None, None], tf.int32), scalar(tf.int32),
                         scalar(tf.int32), tf.TensorSpec([None], tf.float64),
                         scalar(tf.float32), tf.TensorSpec([None], tf.float32),
                         scalar(tf.int32)])
  return model._compiled_beam_search  # pylint: disable=protected-access


def greedy(model, source, max_length=None, extra_length=50):
  """Arg-max decoding, each row until EOS (beam 1, alpha 0 with the fairseq rule must match)."""
  source = np.asarray(source, np.int32)
  max_length = min(max_length or source.shape[1] + extra_length, model.max_length)
  state = model.start_decoding(source, max_length)
  step = _compiled_step(model)
  tokens = np.full(len(source), PAD, np.int32)
  out, ended = [[] for _ in source], np.zeros(len(source), bool)
  for t in range(max_length):
    logits, state = step(tf.constant(tokens), tf.constant(t), state)
    logits = logits.numpy()
    logits[:, PAD] = -np.inf
    tokens = logits.argmax(axis=1).astype(np.int32)
    for i, token in enumerate(tokens):
      if not ended[i]:
        if token == EOS:
          ended[i] = True
        else:
          out[i].append(int(token))
    if ended.all():
      break
  return out


def _compiled_step(model):
  """model.decode_step as one tf.function per model (static shapes: it traces once per batch)."""
  if not hasattr(model, '_compiled_decode_step'):
    model._compiled_decode_step = tf.function(model.decode_step, reduce_retracing=True)  # pylint: disable=protected-access
  return model._compiled_decode_step  # pylint: disable=protected-access
