"""Transformer encoder-decoder as tensor2tensor's transformer_base builds it.

Pre-norm residual blocks (x + dropout(sublayer(layer_norm(x)))) with a final layer norm on each
stack, sinusoidal positions added to embeddings scaled by sqrt(d_model), one embedding matrix
shared by source, target and the output softmax, dropout on the embedded inputs, residuals,
attention weights and the ReLU layer, padding masks on keys and a causal mask in the decoder.
Projections have no biases, as in tensor2tensor. `decode_step` decodes one position at a time
with cached keys and values, attending only over the filled positions; beam search reorders a
table of cache rows, not the caches.
"""
import math

import keras
from keras import ops
import numpy as np
import tensorflow as tf

PAD = 0
NEG_INF = -1e9


def positional_encoding(length, depth):
  """tensor2tensor's timing signal: [sin(p * w_i), cos(p * w_i)] with w_i from 1 to 1e-4."""
  half = depth // 2
  increment = math.log(1e4) / max(half - 1, 1)
  frequencies = np.exp(-increment * np.arange(half))
  angles = np.arange(length)[:, None] * frequencies[None, :]
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


class Attention(keras.layers.Layer):
  """Multi-head dot-product attention; keys/values can be computed once and reused."""

  def __init__(self, d_model, num_heads, dropout, **kwargs):
    super().__init__(**kwargs)
    self.num_heads, self.depth = num_heads, d_model // num_heads
    self.query, self.key, self.value, self.output_projection = (
        keras.layers.Dense(d_model, use_bias=False, name=n) for n in ('q', 'k', 'v', 'o'))
    self.dropout = keras.layers.Dropout(dropout)

  def _split(self, x):  # [B, T, d] -> [B, heads, T, depth]
    shape = ops.shape(x)
    return ops.transpose(ops.reshape(x, (shape[0], shape[1], self.num_heads, self.depth)),
                         (0, 2, 1, 3))

  def keys_values(self, memory):
    return self._split(self.key(memory)), self._split(self.value(memory))

  def attend(self, query, keys, values, mask, training=False):
    """mask: [B, 1 or Tq, Tk], True where a query may attend; None: every key."""
    q = self._split(self.query(query)) * (self.depth ** -0.5)
    logits = ops.einsum('bhqd,bhkd->bhqk', q, keys)
    if mask is not None:
      logits = ops.where(mask[:, None], logits, ops.cast(NEG_INF, logits.dtype))
    weights = self.dropout(ops.softmax(logits, axis=-1), training=training)
    out = ops.transpose(ops.einsum('bhqk,bhkd->bhqd', weights, values), (0, 2, 1, 3))
    shape = ops.shape(out)
    return self.output_projection(
        ops.reshape(out, (shape[0], shape[1], self.num_heads * self.depth)))

  def call(self, query, memory, mask, training=False):
    return self.attend(query, *self.keys_values(memory), mask, training)

  # Incremental decoding (Transformer.decode_step).
  def _slab(self):
    """A cache element's shape (rows left open) and dtype."""
    return (-1, self.num_heads, self.depth), tf.as_dtype(self.compute_dtype)

  def empty_cache(self, max_length):
    """Keys and values as lists of max_length slabs [rows, heads, depth]: setting one slab copies
    none of the others (TensorFlow copies a whole tensor on an indexed write inside a loop)."""
    shape, dtype = self._slab()
    return tuple(tf.raw_ops.TensorListReserve(element_shape=shape, num_elements=max_length,
                                              element_dtype=dtype) for _ in 'kv')

  def step(self, query, cache, position, prefix):
    """(Self-attention output of one position per row [B, 1, d], the cache with its keys and
    values at `position`): each row attends over the position + 1 entries `prefix` [B, heads,
    position + 1] names in the filled slabs, flattened to [(position + 1) * B * heads, depth]."""
    shape, dtype = self._slab()
    cache = tuple(tf.raw_ops.TensorListSetItem(input_handle=c, index=position,
                                               item=ops.reshape(p(query), shape))
                  for c, p in zip(cache, (self.key, self.value)))
    filled = (tf.raw_ops.TensorListGather(input_handle=c, indices=ops.arange(position + 1),
                                          element_shape=shape, element_dtype=dtype) for c in cache)
    keys, values = (ops.take(ops.reshape(f, (-1, self.depth)), prefix, axis=0) for f in filled)
    return self.attend(query, keys, values, None), cache

  def attend_per_sentence(self, query, keys, values, mask):
    """attend for query [B * beam, 1, d] with keys/values [B, heads, S, depth] and mask [B, 1, S]
    computed once per sentence: a sentence's beams are its queries."""
    rows, d = ops.shape(query)[0], ops.shape(query)[2]
    out = self.attend(ops.reshape(query, (ops.shape(keys)[0], -1, d)), keys, values, mask)
    return ops.reshape(out, (rows, 1, d))


class FeedForward(keras.layers.Layer):
  def __init__(self, d_model, ffn, relu_dropout, **kwargs):
    super().__init__(**kwargs)
    self.hidden = keras.layers.Dense(ffn, activation='relu', name='hidden')
    self.out = keras.layers.Dense(d_model, name='out')
    self.dropout = keras.layers.Dropout(relu_dropout)

  def call(self, x, training=False):
    return self.out(self.dropout(self.hidden(x), training=training))


class _Residual(keras.layers.Layer):
  """x + dropout(f(layer_norm(x))): tensor2tensor's pre-norm "n" / "da" processing."""

  def __init__(self, dropout, **kwargs):
    super().__init__(**kwargs)
    self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name='norm')
    self.dropout = keras.layers.Dropout(dropout)

  def call(self, x, sublayer_output, training=False):
    return x + self.dropout(sublayer_output, training=training)


class Transformer(keras.Model):
  """call((source ids [B, S], decoder input ids [B, T])) -> logits [B, T, vocab] (float32)."""

  def __init__(self, vocab_size, encoder_layers=6, decoder_layers=6, d_model=512, num_heads=8,
               ffn=2048, dropout=0.1, attention_dropout=0.1, relu_dropout=0.1, max_length=256,
               **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.d_model, self.max_length = vocab_size, d_model, max_length
    self.embedding = keras.layers.Embedding(
        vocab_size, d_model, embeddings_initializer=keras.initializers.RandomNormal(
            stddev=d_model ** -0.5), name='shared_embedding')
    self.positions = positional_encoding(max_length + 1, d_model)
    self.input_dropout = keras.layers.Dropout(dropout)

    def block(name, with_cross):
      parts = {'self': Attention(d_model, num_heads, attention_dropout, name=f'{name}_self'),
               'self_res': _Residual(dropout, name=f'{name}_self_res'),
               'ffn': FeedForward(d_model, ffn, relu_dropout, name=f'{name}_ffn'),
               'ffn_res': _Residual(dropout, name=f'{name}_ffn_res')}
      if with_cross:
        parts['cross'] = Attention(d_model, num_heads, attention_dropout, name=f'{name}_cross')
        parts['cross_res'] = _Residual(dropout, name=f'{name}_cross_res')
      return parts
    self.encoder_blocks = [block(f'encoder{i}', False) for i in range(encoder_layers)]
    self.decoder_blocks = [block(f'decoder{i}', True) for i in range(decoder_layers)]
    self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name='encoder_norm')
    self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name='decoder_norm')

  def _embed(self, ids, offset=0, training=False):
    x = self.embedding(ids) * ops.cast(math.sqrt(self.d_model), self.compute_dtype)
    length = ops.shape(ids)[1]
    positions = ops.cast(ops.slice(self.positions, (offset, 0), (length, self.d_model)),
                         x.dtype)
    return self.input_dropout(x + positions[None], training=training)

  def encode(self, source, training=False):
    """(encoder output [B, S, d], source mask [B, 1, S])."""
    mask = ops.not_equal(source, PAD)[:, None, :]
    x = self._embed(source, training=training)
    for b in self.encoder_blocks:
      y = b['self_res'].norm(x)
      x = b['self_res'](x, b['self'](y, y, mask, training=training), training=training)
      x = b['ffn_res'](x, b['ffn'](b['ffn_res'].norm(x), training=training), training=training)
    return self.encoder_norm(x), mask

  def _logits(self, x):
    x = self.decoder_norm(x)
    return ops.cast(ops.matmul(x, ops.transpose(ops.cast(self.embedding.embeddings, x.dtype))),
                    'float32')

  def decode(self, decoder_input, encoded, source_mask, training=False):
    length = ops.shape(decoder_input)[1]
    causal = ops.tril(ops.ones((length, length), 'bool'))[None]
    x = self._embed(decoder_input, training=training)
    for b in self.decoder_blocks:
      y = b['self_res'].norm(x)
      x = b['self_res'](x, b['self'](y, y, causal, training=training), training=training)
      x = b['cross_res'](x, b['cross'](b['cross_res'].norm(x), encoded, source_mask,
                                       training=training), training=training)
      x = b['ffn_res'](x, b['ffn'](b['ffn_res'].norm(x), training=training), training=training)
    return self._logits(x)

  def call(self, inputs, training=False):
    source, decoder_input = inputs
    encoded, mask = self.encode(source, training=training)
    return self.decode(decoder_input, encoded, mask, training=training)

  # Incremental decoding.
  def start_decoding(self, source, max_length, beam=1):
    """The state decode_step starts from, for `beam` hypotheses per sentence of `source`: the
    source mask and cross-attention keys/values once per sentence (its beams share them) and
    empty self-attention caches."""
    encoded, mask = self.encode(source)
    rows = ops.shape(source)[0] * beam
    state = {'source_mask': mask, 'prefix_rows': ops.zeros((rows, max_length), 'int32')}
    for i, b in enumerate(self.decoder_blocks):
      state[f'cross{i}'] = b['cross'].keys_values(encoded)
      state[f'self{i}'] = b['self'].empty_cache(max_length)
    return state

  def decode_step(self, token, position, state):
    """Logits [B, vocab] for the next token after `token` [B] at `position`; the new state.

    Row r writes its keys/values at row r of the caches' slab `position`; prefix_rows[r, p] is
    the row that holds position p of hypothesis r's prefix, so reorder moves only that table.
    """
    x = self._embed(token[:, None], offset=position)
    rows, max_length = ops.shape(state['prefix_rows'])
    heads = self.decoder_blocks[0]['self'].num_heads
    prefix_rows = ops.where(ops.arange(max_length) == position, ops.arange(rows)[:, None],
                            state['prefix_rows'])
    prefix = ((ops.arange(position + 1) * rows + prefix_rows[:, None, :position + 1]) * heads
              + ops.arange(heads)[None, :, None])
    new_state = dict(state, prefix_rows=prefix_rows)
    for i, b in enumerate(self.decoder_blocks):
      y = b['self_res'].norm(x)
      attended, new_state[f'self{i}'] = b['self'].step(y, state[f'self{i}'], position, prefix)
      x = b['self_res'](x, attended)
      x = b['cross_res'](x, b['cross'].attend_per_sentence(
          b['cross_res'].norm(x), *state[f'cross{i}'], state['source_mask']))
      x = b['ffn_res'](x, b['ffn'](b['ffn_res'].norm(x)))
    return self._logits(x)[:, 0], new_state

  def reorder(self, state, indices):
    """The state of the hypotheses `indices` [B], index r naming a row of the same sentence as
    row r (as beam search reorders): only the prefix table moves."""
    return dict(state, prefix_rows=ops.take(state['prefix_rows'], indices, axis=0))
