"""Beam search as tensor2tensor decodes: length penalty ((5 + length) / 6)^alpha, finished
hypotheses set aside (never extended), temperature applied to the logits before the
log-softmax at every step, and incremental decoding with cached keys and values.

Lengths count the end-of-sentence token. Each step ranks 2 * beam candidates: an end of sentence
among the first `beam` of them finishes a hypothesis, the others refill the live beams (so
beam 1 with alpha 0 is greedy decoding). Decoding stops for a sentence once it holds `beam`
finished hypotheses and no live one could still beat the worst of them (its log-probability
only falls, and the penalty is at most that of `max_length`). Padding is never generated.
"""
import numpy as np
import tensorflow as tf

from models.transformer import PAD

EOS = 1


def length_penalty(length, alpha):
  return ((5.0 + length) / 6.0) ** alpha


def beam_search(model, source, beam=4, alpha=0.6, temperature=1.0, max_length=None,
                extra_length=50):
  """Best hypothesis (list of ids, without EOS) for every row of `source` [B, S].

  max_length defaults to the source length + extra_length (tensor2tensor's decode_length),
  capped by the model's positions.
  """
  source = np.asarray(source, np.int32)
  batch = len(source)
  max_length = min(max_length or source.shape[1] + extra_length, model.max_length)
  state = model.start_decoding(np.repeat(source, beam, axis=0), max_length)
  step = _compiled_step(model)
  alive = np.zeros((batch, beam, 0), np.int32)
  alive_logp = np.tile(np.r_[0.0, np.full(beam - 1, -np.inf)], (batch, 1))
  finished = [[] for _ in range(batch)]  # (score, ids) per sentence
  done = np.zeros(batch, bool)
  for t in range(max_length):
    last = alive[:, :, -1] if t else np.full((batch, beam), PAD, np.int32)
    logits, state = step(tf.constant(last.reshape(-1)), tf.constant(t), state)
    logp = tf.nn.log_softmax(logits / temperature).numpy().astype(np.float64)
    logp[:, PAD] = -np.inf
    total = alive_logp[:, :, None] + logp.reshape(batch, beam, -1)
    vocab = total.shape[-1]
    flat = total.reshape(batch, -1)
    top = np.argsort(-flat, axis=1, kind='stable')[:, :2 * beam]  # enough to keep beam alive
    new_alive = np.zeros((batch, beam, t + 1), np.int32)
    new_logp = np.full((batch, beam), -np.inf)
    rows = np.repeat(np.arange(batch, dtype=np.int64)[:, None] * beam, beam, axis=1)  # own rows
    penalty = length_penalty(t + 1, alpha)
    for b in range(batch):
      kept = 0
      for rank, candidate in enumerate(top[b]):
        score = flat[b, candidate]
        if not np.isfinite(score):
          break
        source_beam, token = divmod(int(candidate), vocab)
        if token == EOS:  # finished only within the top `beam` candidates (as fairseq)
          if rank < beam and not done[b]:
            finished[b].append((score / penalty, alive[b, source_beam].tolist()))
        elif kept < beam:
          new_alive[b, kept] = np.r_[alive[b, source_beam], token]
          new_logp[b, kept] = score
          rows[b, kept] = b * beam + source_beam
          kept += 1
      finished[b] = sorted(finished[b], key=lambda f: -f[0])[:beam]
      best_possible = new_logp[b, 0] / length_penalty(max_length, alpha)
      if len(finished[b]) == beam and finished[b][-1][0] >= best_possible:
        done[b] = True
    alive, alive_logp = new_alive, new_logp
    if done.all():
      break
    state = model.reorder(state, tf.constant(rows.reshape(-1)))
  results = []
  for b in range(batch):
    if finished[b]:
      results.append(finished[b][0][1])
    else:  # nothing ended within max_length: the best live hypothesis
      results.append(alive[b, 0].tolist())
  return results


def greedy(model, source, max_length=None, extra_length=50):
  """Arg-max decoding, each row until EOS (the reference beam search with beam 1 must match)."""
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
