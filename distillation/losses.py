"""Distillation objectives on joined outputs: y_pred = [student logits (K), teacher logits (K)].

The student's training model (distillation.teacher) outputs both, whether the teacher runs on
the fly or its logits are cached, so the student trains with the ordinary Keras fit loop and
tf.distribute scaling, checkpoints and resumption work unchanged.
"""
import keras
import tensorflow as tf

from models.losses import smooth_labels

KINDS = ('soft', 'logits')


@keras.saving.register_keras_serializable('distillation')
class DistillationLoss(keras.losses.Loss):
  """Per-example distillation loss; y_true are class indices, y_pred [student | teacher] logits.

  soft:   (1 - beta) * H(y_ls, p_s) + beta * H(p_t(T), p_s(T_s))   (paper Section 4)
  logits: (1 - beta) * H(y_ls, p_s) + beta * 0.5 * sum_k (z_s - z_t)^2   (the MNIST variant,
          beta = 0.6 gives 0.4 * CE + 0.6 * 0.5 * squared error)
  y_ls are the hard labels smoothed by `label_smoothing` (0 for the paper's students).
  """

  def __init__(self, kind='soft', beta=1.0, temperature=1.0, student_temperature=1.0,
               label_smoothing=0.0, name='distillation', **kwargs):
    super().__init__(name=name, **kwargs)
    if kind not in KINDS:
      raise ValueError(f'distillation kind must be one of {KINDS}, got "{kind}".')
    if not 0.0 <= beta <= 1.0:
      raise ValueError(f'distillation beta must be in [0, 1], got {beta}.')
    if temperature <= 0 or student_temperature <= 0:
      raise ValueError('distillation temperatures must be positive.')
    self.kind, self.beta, self.temperature = kind, float(beta), float(temperature)
    self.student_temperature, self.label_smoothing = float(student_temperature), label_smoothing

  def call(self, y_true, y_pred):
    if y_pred.shape[-1] % 2:
      raise ValueError(f'predictions of shape {y_pred.shape} are not [student | teacher] logits '
                       '(an even number of columns).')
    num_classes = y_pred.shape[-1] // 2
    y_pred, teacher = y_pred[:, :num_classes], y_pred[:, num_classes:]
    labels = tf.one_hot(tf.reshape(tf.cast(y_true, tf.int32), [-1]), num_classes,
                        dtype=y_pred.dtype)
    if self.label_smoothing:
      labels = smooth_labels(labels, num_classes, self.label_smoothing)
    hard = -tf.reduce_sum(labels * tf.nn.log_softmax(y_pred), axis=-1)
    if self.kind == 'logits':
      soft = 0.5 * tf.reduce_sum(tf.square(y_pred - teacher), axis=-1)
    else:
      p_teacher = tf.nn.softmax(teacher / self.temperature)
      soft = -tf.reduce_sum(p_teacher * tf.nn.log_softmax(y_pred / self.student_temperature), -1)
    return (1.0 - self.beta) * hard + self.beta * soft

  def get_config(self):
    return dict(super().get_config(), kind=self.kind, beta=self.beta,
                temperature=self.temperature, student_temperature=self.student_temperature,
                label_smoothing=self.label_smoothing)
