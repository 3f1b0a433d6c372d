"""Cross-entropy against smoothed labels, for integer or one-hot/soft targets."""
import keras
import tensorflow as tf

CONVENTIONS = ('uniform', 't2t')


def check_smoothing(label_smoothing, convention):
  """The one check of a label-smoothing setting: the losses and the configs call it."""
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}.')
  if convention not in CONVENTIONS:
    raise ValueError(f'label_smoothing_convention must be one of {", ".join(CONVENTIONS)}, '
                     f'got "{convention}".')


def smooth_labels(labels, num_classes, alpha, convention='uniform'):
  """uniform: y (1 - alpha) + alpha / K (the paper's); t2t: 1 - alpha on the true class,
  alpha / (K - 1) elsewhere (tensor2tensor's). `labels` are one-hot or soft, [..., K]."""
  if convention == 'uniform':
    return labels * (1.0 - alpha) + alpha / num_classes
  return labels * (1.0 - alpha) + (1.0 - labels) * alpha / (num_classes - 1)


@keras.saving.register_keras_serializable('models')
class SmoothedCrossEntropy(keras.losses.Loss):
  """multiplier * H(smoothed y, softmax(logits)), per example.

  Returns per-example values and leaves the averaging to Keras, which is what keeps the
  loss correctly scaled under tf.distribute. Integer labels ([B] or [B, 1]) are one-hot
  encoded; float labels of the logits' shape are taken as (soft) distributions.
  """

  def __init__(self, label_smoothing=0.0, multiplier=1.0, from_logits=True,
               convention='uniform', name='smoothed_cross_entropy', **kwargs):
    super().__init__(name=name, **kwargs)
    check_smoothing(label_smoothing, convention)
    if multiplier <= 0:
      raise ValueError(f'multiplier must be positive, got {multiplier}.')
    self.label_smoothing, self.multiplier = float(label_smoothing), float(multiplier)
    self.from_logits, self.convention = from_logits, convention

  def call(self, y_true, y_pred):
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    num_classes = y_pred.shape[-1]
    rank, pred_rank = y_true.shape.rank, y_pred.shape.rank
    if rank == pred_rank and y_true.shape[-1] == 1 and num_classes != 1:
      y_true, rank = tf.squeeze(y_true, -1), rank - 1
    # Keras casts targets to float before the loss sees them: rank tells indices from
    # distributions.
    if rank == pred_rank - 1 and y_true.shape.is_compatible_with(y_pred.shape[:-1]):
      y_true = tf.one_hot(tf.cast(y_true, tf.int32), num_classes, dtype=y_pred.dtype)
    elif not y_true.shape.is_compatible_with(y_pred.shape):
      raise ValueError(f'labels of shape {y_true.shape} do not match predictions of shape '
                       f'{y_pred.shape}; expected class indices of shape {y_pred.shape[:-1]} '
                       f'or distributions of shape {y_pred.shape}.')
    y_true = tf.cast(y_true, y_pred.dtype)
    if self.label_smoothing:
      y_true = smooth_labels(y_true, num_classes, self.label_smoothing, self.convention)
    log_p = tf.nn.log_softmax(y_pred) if self.from_logits else tf.math.log(
        tf.clip_by_value(y_pred, 1e-12, 1.0))
    return -self.multiplier * tf.reduce_sum(y_true * log_p, axis=-1)

  def get_config(self):
    return dict(super().get_config(), label_smoothing=self.label_smoothing,
                multiplier=self.multiplier, from_logits=self.from_logits,
                convention=self.convention)


def _global_sum(value):
  """Sum of `value` over the replicas of the current tf.distribute step (itself outside one)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return value
  return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


@keras.saving.register_keras_serializable('models')
class TokenCrossEntropy(keras.losses.Loss):
  """Smoothed cross-entropy of next-token predictions over the real (non-padding) target tokens,
  divided by the number of real target tokens in the global batch.

  y_true: target ids [B, T] (0 = padding); y_pred: logits [B, T, V]. Returns per-sequence values
  (token losses summed, divided by the global token count) with reduction 'sum', under which
  Keras does not rescale by the replica count and sums gradients over replicas: the step then
  minimizes the mean over every real token of the global batch, however it is split.
  """

  def __init__(self, label_smoothing=0.0, convention='t2t', name='token_cross_entropy',
               **kwargs):
    kwargs['reduction'] = 'sum'
    super().__init__(name=name, **kwargs)
    check_smoothing(label_smoothing, convention)
    self.label_smoothing, self.convention = float(label_smoothing), convention

  def call(self, y_true, y_pred):
    y_pred = tf.cast(y_pred, tf.float32)
    ids = tf.cast(y_true, tf.int32)
    mask = tf.cast(tf.not_equal(ids, 0), tf.float32)
    targets = tf.one_hot(ids, y_pred.shape[-1], dtype=tf.float32)
    if self.label_smoothing:
      targets = smooth_labels(targets, y_pred.shape[-1], self.label_smoothing, self.convention)
    per_token = -tf.reduce_sum(targets * tf.nn.log_softmax(y_pred), axis=-1)
    tokens = _global_sum(tf.reduce_sum(mask))
    return tf.reduce_sum(per_token * mask, axis=1) / tf.maximum(tokens, 1.0)

  def get_config(self):
    return dict(super().get_config(), label_smoothing=self.label_smoothing,
                convention=self.convention)
