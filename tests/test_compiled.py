"""Every training step compiles with XLA (jit_compile, as TPUs run it) and matches the uncompiled
step on the CPU to float tolerance: fc, AlexNet, ResNet-56, Inception-v4, a distillation
student and the Transformer. Dropout is off (XLA draws other random numbers).

The deep batch-normalized networks are tested at reduced depth (every layer type and the same
step): at initialization a deep batch-normalized network amplifies float32 rounding. Measured
on this machine: a batch norm's output differs from numpy float64 by 4e-5 (CPU kernel) and 1e-5
(XLA) relative; through ResNet-56 that grows to a 0.9-1.9% difference of the first gradient
and through the full Inception-v4 to 6% of two steps' change, while ResNet-8 and the one-block
Inception-v4 (its kernels scaled down, see its test) differ by 3e-6 and 5e-5 and the other
networks by 6e-7 to 7e-5 (the tolerance is 1e-3).
"""
import keras
import numpy as np
import pytest

from distillation import DistillationLoss
from distillation.teacher import _joined  # pylint: disable=protected-access
from models import classifier, recipes, translation_training
from models.inception_v4 import inception_v4
from models.resnet import resnet56

TOLERANCE = 1e-3  # of the weights' change; measured 6e-7 to 7e-5 (see the tests' output)


def _two_steps(build, batch, jit):
  """Weights after two training steps from seed 0 (the second step sees momentum too)."""
  keras.utils.set_random_seed(0)
  model = build(jit)
  for _ in range(2):
    model.train_on_batch(*batch)
  return [w.numpy() for w in model.trainable_weights], model


def _check(build, batch):
  """Per weight tensor, the compiled steps' change of the weights equals the uncompiled steps'
  to TOLERANCE of its size (orders of operations differ, and batch norm over 4 examples
  amplifies that through deep networks)."""
  plain, model = _two_steps(build, batch, jit=False)
  compiled, compiled_model = _two_steps(build, batch, jit=True)
  assert compiled_model.jit_compile and not model.jit_compile
  keras.utils.set_random_seed(0)
  initial = [w.numpy() for w in build(False).trainable_weights]
  flat = lambda weights: np.concatenate([w.ravel() for w in weights]).astype(np.float64)
  change = flat(plain) - flat(initial)
  worst = float(np.linalg.norm(flat(compiled) - flat(plain)) / np.linalg.norm(change))
  print(f'|compiled - plain| / |change| of all weights: {worst:.2e}')
  assert worst < TOLERANCE


def _images(shape, num_classes, n=4):
  rng = np.random.default_rng(0)
  return rng.normal(size=(n, *shape)).astype(np.float32), np.arange(n) % num_classes


def _classifier(model_name, **overrides):
  config = recipes.recipe(model_name, **overrides)

  def build(jit):
    model = classifier.build_for(config)
    classifier.compile_model(model, config, steps=100, jit_compile=jit)
    return model
  return build, _images(classifier.input_shape(config), 10)


@pytest.mark.parametrize('model_name, overrides', [
    ('fc', dict(width=64)),
    ('alexnet', {}),
])
def test_image_classifiers_step_the_same_compiled(model_name, overrides):
  _check(*_classifier(model_name, **overrides))


def test_resnet56_steps_the_same_compiled():
  """The recipe's step (Nesterov, clipping, weight decay, loss x3) on ResNet-56's layers with
  one block per stage (ResNet-8)."""
  config = recipes.recipe('resnet56', dataset='cifar10')

  def build(jit):
    model = resnet56(10, (32, 32, 3), weight_decay=config.weight_decay, blocks_per_stage=1)
    classifier.compile_model(model, config, steps=100, jit_compile=jit)
    return model
  _check(build, _images((32, 32, 3), 10))


@pytest.mark.slow(33)
def test_inception_v4_steps_the_same_compiled():
  """Every Inception-v4 block type once (stem, A, reduction A, B, reduction B, C) at 5% width,
  with the recipe's Nesterov step and weight average. The convolution kernels are scaled to
  standard deviation 0.01: at slim's He scale two steps are so ill-conditioned that rounding
  alone moves them by far more than the tolerance (measured, of two steps' change: plain CPU
  kernels with and without oneDNN 0.4% apart, XLA 2.9% from plain; at batch 64, 11% and 5.9%);
  at 0.01 batch norm sits near its epsilon and rounding is not amplified (XLA 5e-5 from plain),
  so the comparison tests the operations."""
  config = recipes.recipe('inception_v4', width_multiplier=0.05, image_size=75,
                          lr_warmup_fraction=0.0, ema_decay=0.9,
                          aux_loss_weight=0.0)  # 75 px leaves no room for the head

  def build(jit):
    model = inception_v4(10, (75, 75, 3), weight_decay=config.weight_decay, dropout_keep=1.0,
                         width=0.05, blocks=(1, 1, 1))
    for layer in model.layers:
      if isinstance(layer, keras.layers.Conv2D):
        layer.kernel.assign(layer.kernel * (0.01 / float(np.std(layer.kernel.numpy()))))
    classifier.compile_model(model, config, steps=100, jit_compile=jit)
    return model
  _check(build, _images((75, 75, 3), 10))


def test_a_distillation_student_steps_the_same_compiled():
  config = recipes.recipe('alexnet', distill_temperature=4.0)
  teacher_logits = np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)

  def build(jit):
    student = classifier.build_for(config)
    cached = keras.Input((10,), name='teacher_logits')  # as distillation.teacher's cached mode
    trained = _joined(student, cached, cached)
    classifier.compile_model(trained, config, steps=100, jit_compile=jit, loss=DistillationLoss(
        'soft', 0.5, 4.0, 1.0, 0.0))
    return trained
  images, labels = _images(classifier.input_shape(config), 10)
  _check(build, ((images, teacher_logits), labels))


def test_the_transformer_steps_the_same_compiled():
  config = recipes.recipe('transformer_small', encoder_layers=1, decoder_layers=1,
                                      d_model=32, num_heads=2, ffn=64, dropout=0.0,
                                      attention_dropout=0.0, relu_dropout=0.0, warmup_steps=1,
                                      label_smoothing=0.1)

  def build(jit):
    model = translation_training.build_model(config, 50)
    translation_training.compile_model(model, config, jit_compile=jit)
    return model
  rng = np.random.default_rng(0)
  source, target = rng.integers(3, 50, (4, 7)), rng.integers(3, 50, (4, 6))
  decoder_input = np.concatenate([np.zeros((4, 1), int), target[:, :-1]], axis=1)
  _check(build, ((source.astype(np.int32), decoder_input.astype(np.int32)),
                 target.astype(np.int32)))
