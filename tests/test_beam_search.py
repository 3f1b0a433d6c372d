"""Beam search: the compiled search against the previous host-side decoder (fairseq's end-of-
sentence rule), against a numpy port of tensor2tensor's loop (t2t's rule), greedy decoding and
an exhaustive search; the incremental decoding step against the previous one (every state entry
per hypothesis, attention over the whole preallocated cache) and against teacher forcing."""
import itertools

from keras import ops
import numpy as np
import pytest
import tensorflow as tf

from models import beam_search
from models.beam_search import EOS, PAD, length_penalty
from models.beam_search import _compiled_step  # pylint: disable=protected-access
from tests.test_translation import _tiny

VOCAB = 24


def _peaky_model():
  """Random weights scaled up, EOS favoured: many sentences end before max_length (40), at
  many different lengths."""
  return _tiny(vocab=VOCAB, d_model=16, scale=4, eos_scale=2.0)


def _sources(count, seed, width=10):
  """Random sentences of 1 to width - 1 tokens and EOS, zero-padded to width."""
  rng = np.random.default_rng(seed)
  sources = np.zeros((count, width), np.int32)
  for row, length in zip(sources, rng.integers(1, width, count)):
    row[:length] = rng.integers(2, VOCAB, length)
    row[length] = EOS
  return sources


def _reference_beam_search(model, source, beam=4, alpha=0.6, temperature=1.0, max_length=None,
                           extra_length=50):
  """The previous decoder (a host loop per step and sentence), verbatim: fairseq's EOS rule."""
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


T2T_INF = 1e7  # tensor2tensor's INF


def _t2t_beam_search(model, source, beam, alpha, temperature, extra_length=50):
  """tensor2tensor's beam_search (tensorflow/tensor2tensor, tensor2tensor/utils/beam_search.py,
  commit f8b951a: grow_topk, grow_alive, grow_finished, _is_finished) in numpy, on our model.

  Where the port follows ours instead (none of it changes the best hypothesis): logits divided
  by the temperature and PAD masked; t2t ranks candidates by log-prob / penalty(i + 1) and
  multiplies back, the same order, so log-probs are ranked directly (float64); no initial id
  column. The stop rule is t2t's own: the whole batch, once every sentence's worst finished
  hypothesis beats its best live bound.
  """
  batch = len(source)
  decode_length = min(source.shape[1] + extra_length, model.max_length)
  state = model.start_decoding(np.repeat(source, beam, axis=0), decode_length)
  step = _compiled_step(model)
  batch_pos = np.arange(batch)[:, None]
  alive_seq = np.zeros((batch, beam, 0), np.int64)
  alive_log_probs = np.tile(np.r_[0.0, np.full(beam - 1, -np.inf)], (batch, 1))
  finished_seq = np.zeros((batch, beam, 0), np.int64)
  finished_scores = np.full((batch, beam), -T2T_INF)
  finished_flags = np.zeros((batch, beam), bool)

  def top(scores, k):  # tf.nn.top_k: lower index first on ties
    return np.argsort(-scores, axis=1, kind='stable')[:, :k]

  def is_finished(i):
    max_length_penalty = length_penalty(decode_length, alpha)
    lower_bound_alive_scores = alive_log_probs[:, 0] / max_length_penalty
    lowest_finished = np.min(finished_scores * finished_flags, axis=1)
    lowest_finished += (1.0 - finished_flags.any(1)) * -T2T_INF
    bound_is_met = np.all(lowest_finished > lower_bound_alive_scores)
    return not (i < decode_length and not bound_is_met)

  i = 0
  while not is_finished(i):
    # grow_topk
    last = alive_seq[:, :, -1] if i else np.full((batch, beam), PAD)
    logits, state = step(tf.constant(last.reshape(-1), tf.int32), tf.constant(i), state)
    logp = tf.nn.log_softmax(logits / temperature).numpy().astype(np.float64)
    logp[:, PAD] = -np.inf
    log_probs = logp.reshape(batch, beam, -1) + alive_log_probs[:, :, None]
    vocab = log_probs.shape[-1]
    flat = log_probs.reshape(batch, -1)
    topk_ids = top(flat, 2 * beam)
    topk_log_probs = np.take_along_axis(flat, topk_ids, 1)
    topk_scores = topk_log_probs / length_penalty(i + 1, alpha)
    topk_beam_index, topk_ids = np.divmod(topk_ids, vocab)
    topk_seq = np.concatenate([alive_seq[batch_pos, topk_beam_index], topk_ids[:, :, None]], 2)
    topk_finished = topk_ids == EOS
    # grow_alive: the best `beam` that did not end
    kept = top(topk_scores + topk_finished * -T2T_INF, beam)
    alive_seq = topk_seq[batch_pos, kept]
    alive_log_probs = topk_log_probs[batch_pos, kept]
    rows = batch_pos * beam + topk_beam_index[batch_pos, kept]
    state = model.reorder(state, tf.constant(rows.reshape(-1)))
    # grow_finished: the best `beam` of the finished and every candidate that ended
    finished_seq = np.concatenate([finished_seq, np.zeros((batch, beam, 1), np.int64)], 2)
    curr_scores = topk_scores + (1.0 - topk_finished) * -T2T_INF
    merged_scores = np.concatenate([finished_scores, curr_scores], 1)
    best = top(merged_scores, beam)
    finished_seq = np.concatenate([finished_seq, topk_seq], 1)[batch_pos, best]
    finished_scores = merged_scores[batch_pos, best]
    finished_flags = np.concatenate([finished_flags, topk_finished], 1)[batch_pos, best]
    i += 1
  seqs = np.where(finished_flags.any(1)[:, None], finished_seq[:, 0], alive_seq[:, 0])
  return [list(s[:list(s).index(EOS)]) if EOS in s else list(s) for s in seqs.tolist()]


class _ReferenceDecoder:
  """The previous incremental decoder, verbatim, on `model`'s weights: every state entry per
  hypothesis row (cross-attention keys/values and the source mask repeated per beam and
  gathered with the caches at each reorder), caches [rows, heads, max_length, depth] rewritten
  whole each step and attention over all max_length positions, masked."""

  def __init__(self, model):
    self.model, self.vocab_size, self.max_length = model, model.vocab_size, model.max_length

  def start_decoding(self, source, max_length, beam=1):
    model = self.model
    encoded, mask = model.encode(source)
    batch = ops.shape(source)[0]
    state = {'source_mask': mask}
    for i, b in enumerate(model.decoder_blocks):
      state[f'cross{i}'] = b['cross'].keys_values(encoded)
      empty = ops.zeros((batch, b['self'].num_heads, max_length, b['self'].depth),
                        model.compute_dtype)
      state[f'self{i}'] = (empty, empty)
    return self.reorder(state, ops.repeat(ops.arange(batch), beam))

  def decode_step(self, token, position, state):
    model = self.model
    x = model._embed(token[:, None], offset=position)  # pylint: disable=protected-access
    max_length = ops.shape(state['self0'][0])[2]
    slot = ops.one_hot(position, max_length, dtype=model.compute_dtype)[None, None, :, None]
    visible = ops.less_equal(ops.arange(max_length), position)[None, None, :]
    new_state = {'source_mask': state['source_mask']}
    for i, b in enumerate(model.decoder_blocks):
      y = b['self_res'].norm(x)
      k, v = b['self'].keys_values(y)
      keys, values = (c + slot * n for c, n in zip(state[f'self{i}'], (k, v)))
      new_state[f'self{i}'] = (keys, values)
      new_state[f'cross{i}'] = state[f'cross{i}']
      x = b['self_res'](x, b['self'].attend(y, keys, values, visible))
      x = b['cross_res'](x, b['cross'].attend(b['cross_res'].norm(x), *state[f'cross{i}'],
                                              state['source_mask']))
      x = b['ffn_res'](x, b['ffn'](b['ffn_res'].norm(x)))
    return model._logits(x)[:, 0], new_state  # pylint: disable=protected-access

  def reorder(self, state, indices):
    return {k: tuple(ops.take(t, indices, axis=0) for t in v) if isinstance(v, tuple)
            else ops.take(v, indices, axis=0) for k, v in state.items()}


@pytest.fixture(scope='module')
def peaky_model():
  return _peaky_model()


def _configurations(beam):
  """(alpha, temperature, sources): 48 sentences each, batches of 48 and of 16."""
  for n, (alpha, temperature) in enumerate(itertools.product((0.0, 0.6), (1.0, 0.7))):
    sources = _sources(48, seed=100 * beam + n, width=6 + 2 * n)
    yield alpha, temperature, [sources] if n % 2 else np.split(sources, 3)


@pytest.mark.parametrize('beam', [1, 2, 4])
def test_the_fairseq_rule_gives_the_previous_decoders_hypotheses(peaky_model, beam):
  ended = 0
  for alpha, temperature, batches in _configurations(beam):
    for sources in batches:
      got = beam_search.beam_search(peaky_model, sources, beam, alpha, temperature,
                                    eos_rule='fairseq')
      assert got == _reference_beam_search(peaky_model, sources, beam, alpha, temperature)
      ended += sum(len(ids) < peaky_model.max_length for ids in got)
  assert ended > 4 * 48 / 3  # many end (most with beams): the end-of-sentence rule is exercised


@pytest.mark.parametrize('beam', [1, 2, 4])
def test_the_t2t_rule_gives_tensor2tensors_hypotheses(peaky_model, beam):
  for alpha, temperature, batches in _configurations(beam):
    for sources in batches:
      assert beam_search.beam_search(peaky_model, sources, beam, alpha, temperature) == (
          _t2t_beam_search(peaky_model, sources, beam, alpha, temperature))


def test_the_rules_differ_and_t2t_keeps_the_likelier_end(peaky_model):
  """Beam 1, alpha 0: fairseq's rule is greedy; t2t's also keeps an end of sentence ranked
  second, so where the greedy decode ended and they differ, t2t's is more probable."""
  sources = _sources(32, seed=7)
  fairseq = beam_search.beam_search(peaky_model, sources, 1, 0.0, eos_rule='fairseq')
  t2t = beam_search.beam_search(peaky_model, sources, 1, 0.0, eos_rule='t2t')
  differ = [(s, f, t) for s, f, t in zip(sources, fairseq, t2t) if f != t]
  assert len(differ) >= 3
  for source, f, t in differ:
    if len(f) < peaky_model.max_length:
      assert (_sequence_log_prob(peaky_model, source, t, 1.0)
              > _sequence_log_prob(peaky_model, source, f, 1.0))


def test_fixed_steps_decode_exactly_that_many_tokens(peaky_model):
  out = beam_search.beam_search(peaky_model, _sources(6, seed=3), 4, fixed_steps=7)
  assert [len(ids) for ids in out] == [7] * 6
  assert not any(EOS in ids or PAD in ids for ids in out)


def test_beam_one_without_length_penalty_is_greedy():
  lengths = set()
  for seed in range(3):
    model = _tiny(scale=4, seed=seed, eos_scale=2.0)
    source = np.random.default_rng(seed).integers(2, 12, (12, 6)).astype(np.int32)
    greedy = beam_search.greedy(model, source, max_length=10)
    lengths |= {len(g) for g in greedy}
    assert beam_search.beam_search(model, source, beam=1, alpha=0.0, max_length=10,
                                   eos_rule='fairseq') == greedy
  assert len(lengths) >= 3  # decodes of several lengths: the comparison means something


def _sequence_log_prob(model, source, ids, temperature):
  """log p(ids + [EOS] | source) under softmax(logits / T), from one full (teacher-forced) pass."""
  target = np.array([ids + [beam_search.EOS]], np.int32)
  decoder_input = np.c_[[[0]], target[:, :-1]].astype(np.int32)
  logits = model((source[None], decoder_input)).numpy()[0].astype(np.float64) / temperature
  top = logits.max(1, keepdims=True)
  log_p = logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))
  return float(sum(log_p[t, token] for t, token in enumerate(target[0])))


@pytest.mark.parametrize('alpha,temperature', [(0.6, 1.0), (1.5, 1.3), (0.0, 0.7)])
def test_wide_beam_finds_the_best_sequence_under_the_length_penalty(alpha, temperature):
  """Vocabulary {PAD, EOS, 2, 3, 4}: every hypothesis of up to 3 tokens plus EOS is scored."""
  model = _tiny(vocab=5, scale=3, seed=1, eos_scale=2.0)
  for source in np.random.default_rng(2).integers(2, 5, (4, 4)).astype(np.int32):
    candidates = [list(c) for n in range(4) for c in itertools.product((2, 3, 4), repeat=n)]
    scores = [_sequence_log_prob(model, source, c, temperature)
              / beam_search.length_penalty(len(c) + 1, alpha) for c in candidates]
    best = candidates[int(np.argmax(scores))]
    # 27 live hypotheses x 4 tokens = 108 candidates at the last step: a beam of 128 keeps all.
    found = beam_search.beam_search(model, source[None], beam=128, alpha=alpha,
                                    temperature=temperature, max_length=4)[0]
    assert found == best


@pytest.fixture(scope='module', params=['peaky', 'two_layers'])
def model_and_reference(request):
  """A random model and the previous decoder on its weights (one each: the search traces once)."""
  model = _peaky_model() if request.param == 'peaky' else _tiny(
      vocab=VOCAB, layers=2, d_model=32, scale=3, seed=5, eos_scale=2.0)
  return model, _ReferenceDecoder(model)


@pytest.mark.parametrize('beam', [1, 2, 4])
def test_decode_steps_give_the_previous_steps_logits_and_teacher_forcings(model_and_reference,
                                                                         beam):
  """Random tokens and reorders within each sentence, up to the last cached position: the step's
  logits equal the previous step's (float rounding apart) and the teacher-forced logits of each
  hypothesis's own prefix."""
  model, reference = model_and_reference
  rng = np.random.default_rng(beam)
  source, max_length = _sources(5, seed=beam), 12
  state = model.start_decoding(source, max_length, beam)
  reference_state = reference.start_decoding(source, max_length, beam)
  prefixes = np.full((len(source) * beam, 1), PAD, np.int32)
  for t in range(max_length):
    logits, state = model.decode_step(tf.constant(prefixes[:, -1]), t, state)
    want, reference_state = reference.decode_step(tf.constant(prefixes[:, -1]), t,
                                                  reference_state)
    np.testing.assert_allclose(logits.numpy(), want.numpy(), rtol=0, atol=1e-5)
    forced = model((np.repeat(source, beam, axis=0), prefixes)).numpy()[:, -1]
    np.testing.assert_allclose(logits.numpy(), forced, rtol=0, atol=1e-4)
    rows = np.repeat(np.arange(len(source)) * beam, beam) + rng.integers(0, beam, len(prefixes))
    state = model.reorder(state, tf.constant(rows, tf.int32))
    reference_state = reference.reorder(reference_state, tf.constant(rows, tf.int32))
    prefixes = np.c_[prefixes[rows], rng.integers(2, VOCAB, len(prefixes))].astype(np.int32)


@pytest.mark.parametrize('eos_rule', ['t2t', 'fairseq'])
@pytest.mark.parametrize('beam', [1, 2, 4])
def test_the_search_gives_the_previous_steps_hypotheses(model_and_reference, beam, eos_rule):
  model, reference = model_and_reference
  for alpha, temperature, batches in _configurations(beam):
    for sources in batches:
      assert beam_search.beam_search(model, sources, beam, alpha, temperature,
                                     eos_rule=eos_rule) == (
          beam_search.beam_search(reference, sources, beam, alpha, temperature,
                                  eos_rule=eos_rule))
