"""The smoothed-label loss and the recipe optimizer against Keras built-ins and numpy recursions."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models import MomentumSGD, SmoothedCrossEntropy

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 5)).astype(np.float32) * 3
LABELS = np.array([0, 4, 2, 2, 1, 3])


def _log_softmax64(z):
  z = z.astype(np.float64)
  z = z - z.max(1, keepdims=True)
  return z - np.log(np.exp(z).sum(1, keepdims=True))


@pytest.mark.parametrize('alpha', [0.0, 0.05, 0.1, 0.3])
def test_equals_keras_categorical_crossentropy_for_one_hot(alpha):
  one_hot = np.eye(5, dtype=np.float32)[LABELS]
  ours = SmoothedCrossEntropy(alpha)(one_hot, LOGITS)
  keras_ref = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=alpha)(
      one_hot, LOGITS)
  np.testing.assert_allclose(float(ours), float(keras_ref), rtol=1e-5)


def test_integer_labels_hand_computed_with_multiplier():
  alpha, k = 0.1, 5
  target = np.full((6, k), alpha / k)
  target[np.arange(6), LABELS] += 1 - alpha
  want = 3.0 * -(target * _log_softmax64(LOGITS)).sum(1)
  loss = SmoothedCrossEntropy(alpha, multiplier=3.0)
  np.testing.assert_allclose(loss.call(tf.constant(LABELS), LOGITS).numpy(), want, rtol=1e-5)
  np.testing.assert_allclose(float(loss(LABELS, LOGITS)), want.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(loss(LABELS[:, None], LOGITS)), want.mean(), rtol=1e-5)


def test_t2t_convention_formula():
  alpha, k = 0.1, 5
  target = np.full((6, k), alpha / (k - 1))
  target[np.arange(6), LABELS] = 1 - alpha
  want = -(target * _log_softmax64(LOGITS)).sum(1).mean()
  got = SmoothedCrossEntropy(alpha, convention='t2t')(LABELS, LOGITS)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_soft_labels_and_probabilities_input():
  soft = RNG.dirichlet(np.ones(5), size=6).astype(np.float32)
  want = -(soft * _log_softmax64(LOGITS)).sum(1).mean()
  np.testing.assert_allclose(float(SmoothedCrossEntropy()(soft, LOGITS)), want, rtol=1e-5)
  probs = tf.nn.softmax(LOGITS).numpy()
  np.testing.assert_allclose(float(SmoothedCrossEntropy(from_logits=False)(soft, probs)), want,
                             rtol=1e-4)


def test_bad_arguments_raise_clear_errors():
  for alpha in (-0.1, 1.0, 1.5):
    with pytest.raises(ValueError, match=r'label_smoothing must be in \[0, 1\)'):
      SmoothedCrossEntropy(alpha)
  with pytest.raises(ValueError, match='convention'):
    SmoothedCrossEntropy(0.1, convention='other')
  with pytest.raises(ValueError, match='do not match'):
    SmoothedCrossEntropy()(np.zeros((6, 4), np.float32), LOGITS)
  with pytest.raises(ValueError, match='do not match'):
    SmoothedCrossEntropy()(np.zeros((3,), np.int32), LOGITS)


def _run_optimizer(opt, grads):
  w = keras.Variable(np.array([1.0, -2.0, 0.5], np.float32), name='w')
  for g in grads:
    opt.apply_gradients([(tf.constant(g, tf.float32), w)])
  return w.numpy().astype(np.float64)


GRADS = [np.array([0.3, -1.0, 2.0]), np.array([-0.5, 0.2, 1.0]), np.array([1.5, 0.0, -0.7])]


@pytest.mark.parametrize('nesterov,d', [(False, 0.9), (False, 0.0), (True, 0.0)])
def test_momentum_sgd_matches_pytorch_style_recursion(nesterov, d):
  lr, mu = 0.7, 0.9
  w, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
  for g in GRADS:
    v = mu * v + (1 - d) * g
    w = w - lr * (g + mu * v if nesterov else v)
  got = _run_optimizer(MomentumSGD(lr, momentum=mu, dampening=d, nesterov=nesterov), GRADS)
  np.testing.assert_allclose(got, w, rtol=1e-5)


def test_momentum_sgd_takes_bfloat16_gradients_and_rejects_nesterov_with_dampening():
  lr, mu, d = 0.7, 0.9, 0.9
  w, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
  grads = [tf.cast(g, tf.bfloat16).numpy().astype(np.float64) for g in GRADS]
  for g in grads:
    v = mu * v + (1 - d) * g
    w = w - lr * v
  opt = MomentumSGD(lr, momentum=mu, dampening=d)
  var = keras.Variable(np.array([1.0, -2.0, 0.5], np.float32), name='w')
  for g in GRADS:  # as under mixed_bfloat16: bfloat16 gradients of float32 variables
    opt.apply_gradients([(tf.cast(g, tf.bfloat16), var)])
  np.testing.assert_allclose(var.numpy(), w, rtol=1e-5)
  with pytest.raises(ValueError, match='Nesterov momentum needs dampening 0'):
    MomentumSGD(lr, momentum=mu, dampening=d, nesterov=True)


def test_momentum_sgd_equals_keras_sgd_without_dampening():
  for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
    ours = _run_optimizer(MomentumSGD(0.1, momentum=momentum, nesterov=nesterov), GRADS)
    ref = _run_optimizer(keras.optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov), GRADS)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_per_layer_learning_rate_multiplier():
  inputs = keras.Input((2,))
  out = keras.layers.Dense(1, name='logits', kernel_initializer='zeros')(
      keras.layers.Dense(2, name='hidden', kernel_initializer='ones')(inputs))
  model = keras.Model(inputs, out)
  opt = MomentumSGD(1.0, lr_multipliers={'logits': 0.1})
  before = [v.numpy().copy() for v in model.trainable_variables]
  opt.apply_gradients([(tf.ones_like(v), v) for v in model.trainable_variables])
  for v, b in zip(model.trainable_variables, before):
    step = 0.1 if 'logits' in v.path else 1.0
    np.testing.assert_allclose(b - v.numpy(), step, rtol=1e-6)
