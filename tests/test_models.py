"""Architectures: parameter counts by hand, LRN against its formula, penultimate/templates API."""
import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from data import preprocessing
import data
from models import classifier, recipes, trainer
import models
from models.alexnet import LocalResponseNormalization
from models.batch_norm import FusedBatchNormalization
from models.inception_v4 import inception_v4
from tests.conftest import needs_onednn_bfloat16


def test_alexnet_has_the_tutorial_parameter_count():
  assert models.alexnet(10).count_params() == 1_068_298


def test_fc_parameter_count_by_hand():
  for width, k in ((1200, 10), (800, 10), (800, 47)):
    want = (784 * width + width) + (width * width + width) + (width * k + k)
    assert models.fc(k, (28, 28, 1), width=width).count_params() == want


def _resnet56_count(k, blocks=9):
  conv = lambda cin, cout, ks: ks * ks * cin * cout
  bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance
  total = conv(3, 16, 3) + bn(16)
  cin = 16
  for filters in (16, 32, 64):
    for block in range(blocks):
      total += bn(cin) + conv(cin, filters, 3) + bn(filters) + conv(filters, filters, 3)
      if block == 0:
        total += conv(cin, filters, 1) + bn(filters)
      cin = filters
  return total + 64 * k + k


def test_resnet56_parameter_count_by_hand():
  for k in (10, 100):
    assert models.resnet56(k).count_params() == _resnet56_count(k)


def test_resnet_blocks_sets_the_depth_of_the_built_network_and_only_resnet56_takes_it():
  """--resnet_blocks=1 (ResNet-8, the tests' teachers) reaches the builder; other models refuse
  it in one line."""
  for blocks in (1, 9):
    config = models.recipe('resnet56', dataset='cifar10', resnet_blocks=blocks)
    model = models.build_model(config, 10, (32, 32, 3))
    assert model.count_params() == _resnet56_count(10, blocks)
    assert len([l for l in model.layers if l.__class__.__name__ == 'Conv2D'
                and not l.name.endswith('_proj')]) == 6 * blocks + 1
  with pytest.raises(ValueError, match='resnet_blocks is a resnet56 setting'):
    models.recipe('alexnet', resnet_blocks=1)
  with pytest.raises(ValueError, match='resnet_blocks must be at least 1'):
    models.recipe('resnet56', resnet_blocks=0)


def test_resnet56_structure():
  model = models.resnet56(100)
  convs = [l for l in model.layers if l.__class__.__name__ == 'Conv2D']
  assert len([l for l in model.layers if isinstance(l, FusedBatchNormalization)]) == 58
  assert len([c for c in convs if not c.name.endswith('_proj')]) == 55  # + dense = 56 layers
  assert model.get_layer('stage1_block0_conv1').strides == (2, 2)
  assert model.get_layer('stage1_block0_conv1').padding == 'valid'  # fixed padding
  assert model.get_layer('stage1_block0_conv1_pad').padding == ((1, 1), (1, 1))
  assert model.get_layer('stage0_block0_bn1').momentum == 0.9
  assert model.get_layer('stage0_block0_bn1').epsilon == 1e-5
  assert model.output_shape == (None, 100)


def test_weight_decay_terms():
  alexnet = models.alexnet(10, weight_decay=0.04)
  assert len(alexnet.losses) == 2  # dense384 and dense192 kernels only
  w = alexnet.get_layer('dense384').kernel.numpy()
  w2 = alexnet.get_layer('dense192').kernel.numpy()
  want = 0.5 * 0.04 * (np.sum(w.astype(np.float64) ** 2) + np.sum(w2.astype(np.float64) ** 2))
  np.testing.assert_allclose(float(sum(alexnet.losses)), want, rtol=1e-5)
  resnet = models.resnet56(10, weight_decay=1e-4)
  # conv kernels (55 + 3 projections), gamma and beta of 58 BNs (1 + 27 x 2 + 3), dense kernel
  assert len(resnet.losses) == 58 + 2 * 58 + 1


def test_lrn_matches_its_formula():
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 12)).astype(np.float32)
  got = LocalResponseNormalization()(x).numpy()
  sq = np.pad(x.astype(np.float64) ** 2, [(0, 0)] * 3 + [(4, 4)])
  window = sum(sq[..., i:i + 12] for i in range(9))
  want = x / (1.0 + 0.001 / 9 * window) ** 0.75
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_penultimate_and_templates():
  for model, dim in ((models.alexnet(10), 192), (models.resnet56(10), 64),
                     (models.fc(10, (28, 28, 1), width=800), 800)):
    x = np.random.default_rng(0).normal(size=(3,) + model.input_shape[1:]).astype(np.float32)
    h = models.penultimate_model(model)(x).numpy()
    assert h.shape == (3, dim)
    t = models.templates(model)
    assert t.shape == (dim + 1, 10)
    logits = np.concatenate([h, np.ones((3, 1))], 1) @ t
    np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_fc_init_variance_is_the_papers():
  for variance in (0.03, 0.0009):
    kernel = models.fc(10, (28, 28, 1), init_variance=variance).get_layer('hidden1').kernel
    assert np.var(kernel.numpy()) == pytest.approx(variance, rel=0.02)


@pytest.fixture
def mixed_bfloat16():
  keras.config.set_dtype_policy('mixed_bfloat16')
  yield
  keras.config.set_dtype_policy('float32')


@needs_onednn_bfloat16
def test_mixed_bfloat16_keeps_logits_lrn_and_variables_float32(mixed_bfloat16):
  del mixed_bfloat16
  config = models.recipe('alexnet', batch_size=8, train_steps=10, momentum=0.9,
                         dtype_policy='mixed_bfloat16')
  model = classifier.build_for(config)
  assert model.get_layer('conv1').compute_dtype == 'bfloat16'
  for name in ('norm1', 'norm2', 'logits'):  # no bfloat16 LRN kernel on CPU; float32 logits
    assert model.get_layer(name).compute_dtype == 'float32'
  assert {v.dtype for v in model.variables} == {'float32'}
  classifier.compile_model(model, config, 10)
  x = np.random.default_rng(0).normal(size=(8, 24, 24, 3)).astype(np.float32)
  history = model.fit(x, np.arange(8) % 10, batch_size=8, epochs=1, verbose=0)
  assert np.isfinite(history.history['loss'][0])
  assert model(x).dtype == 'float32'
  assert {v.dtype for v in model.optimizer.variables} == {'float32', 'int64'}


@needs_onednn_bfloat16
def test_a_mixed_bfloat16_run_trains_and_its_policy_survives_clear_session(tmp_path,
                                                                           shared_data):
  """300 steps of a 256-wide fc network under mixed_bfloat16 must learn (test accuracy above
  80%, ECE below 0.1) with the policy in force inside the trainer and restored after it.

  Measured on an AMD EPYC Zen 5: accuracy 92.84%, ECE 0.025 with the default oneDNN kernels
  (margins 12.8 points and 0.075). Under ONEDNN_MAX_CPU_ISA=AVX2 it cannot run (conftest).
  """
  config = models.recipe('fc', width=256, batch_size=128, train_steps=300,
                         preprocessing='mnist', dtype_policy='mixed_bfloat16')
  seen = {}

  class Watched(classifier.ClassifierTask):
    def trained_model(self, model):  # after the trainer's clear_session, in the strategy scope
      seen['hidden'] = model.get_layer('hidden1').compute_dtype
      return model
  results = trainer.run_task(Watched(config, str(tmp_path / 'run'), shared_data),
                             trainer.RunOptions(checkpoint_every=300, log=lambda *a, **k: None))
  assert seen['hidden'] == 'bfloat16'
  assert results['metrics']['test']['accuracy'] > 0.8
  assert 0.0 <= results['metrics']['test']['ece'] < 0.1
  assert keras.config.dtype_policy().name == 'float32'  # the caller's policy, restored


def _keras_and_fused_pair(seed=0):
  """A Keras BatchNormalization and the fused one with the same random state."""
  rng = np.random.default_rng(seed)
  layers = (keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            FusedBatchNormalization(momentum=0.9, epsilon=1e-5))
  state = [rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)]
  for layer in layers:
    layer.build((None, 5, 4, 3))
    layer.set_weights([s.astype(np.float32) for s in state])  # gamma, beta, moving mean, var
  x = (rng.normal(size=(6, 5, 4, 3)) * [1.0, 3.0, 0.2] + [0.5, -2.0, 4.0]).astype(np.float32)
  return layers, state, x


def test_fused_batch_norm_matches_numpy_float64_and_keras_in_training():
  """Output, moving statistics (biased variance, Keras's rule) and gradients, one step."""
  (plain, fused), (gamma, beta, mean0, var0), x = _keras_and_fused_pair()
  x64 = x.astype(np.float64)
  mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
  want = gamma * (x64 - mean) / np.sqrt(var + 1e-5) + beta
  grads = []
  for layer in (plain, fused):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
      tape.watch(xt)
      y = layer(xt, training=True)
      loss = tf.reduce_sum(y * tf.sin(xt))
    grads.append(tape.gradient(loss, [xt] + layer.trainable_variables))
    np.testing.assert_allclose(y.numpy(), want, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.9 * mean0 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 * var0 + 0.1 * var, rtol=1e-5)
  for g_plain, g_fused in zip(*grads):
    np.testing.assert_allclose(g_fused.numpy(), g_plain.numpy(), rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_inference_and_checkpoint_names_match_keras():
  (plain, fused), (gamma, beta, mean, var), x = _keras_and_fused_pair(1)
  want = gamma * (x.astype(np.float64) - mean) / np.sqrt(var + 1e-5) + beta
  np.testing.assert_allclose(fused(x, training=False).numpy(), want, atol=1e-5)
  np.testing.assert_allclose(plain(x, training=False).numpy(), want, atol=1e-5)
  assert [v.path.split('/')[-1] for v in fused.variables] == [
      v.path.split('/')[-1] for v in plain.variables]


_TRAINABLE = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)


@functools.lru_cache(maxsize=1)
def _recipe_inception_v4():
  """The paper recipe's Inception-v4 (auxiliary head included), built once for two tests."""
  keras.utils.set_random_seed(0)
  return classifier.build_for(recipes.recipe('inception_v4'))


def test_inception_v4_has_the_published_parameter_count_and_grids():
  """42,679,816 trainable parameters at 1,000 classes with batch-norm scale and no auxiliary
  head: the figure timm and keras-hub give for Inception-v4 (moving statistics not counted).
  The recipe's network adds slim's training-only head; its main output alone is the same
  42,679,816."""
  model = inception_v4(1000, weight_decay=8e-5)
  assert _TRAINABLE(model) == 42_679_816
  assert len(model.losses) == len([l for l in model.layers if l.__class__.__name__ in (
      'Conv2D', 'Dense')])  # weight decay on kernels only, as slim's arg scope
  grids = {name: model.get_layer(name).output.shape[1:] for name in ('Mixed_5e', 'Mixed_6h',
                                                                     'Mixed_7d')}
  assert grids == {'Mixed_5e': (35, 35, 384), 'Mixed_6h': (17, 17, 1024),
                   'Mixed_7d': (8, 8, 1536)}
  assert model.get_layer('Dropout_1b').rate == pytest.approx(0.2)  # slim's keep 0.8
  with_aux = _recipe_inception_v4()
  assert [o.shape for o in with_aux.outputs] == [(None, 1000), (None, 1000)]
  # slim's AuxLogits: 1x1 conv 128 + BN, 5x5 conv 768 + BN, fully connected to 1,000 classes
  aux = 1024 * 128 + 2 * 128 + 5 * 5 * 128 * 768 + 2 * 768 + 768 * 1000 + 1000
  assert _TRAINABLE(with_aux) == 42_679_816 + aux
  assert _TRAINABLE(keras.Model(with_aux.inputs, with_aux.outputs[0])) == 42_679_816
  with pytest.raises(ValueError, match='at least 107 pixels'):
    inception_v4(10, (106, 106, 3), width=0.05, aux_head=True)


def _truncated_normal_moments(a=2.0):
  """(standard deviation, fourth moment) of a unit normal truncated to [-a, a]."""
  mass = math.erf(a / math.sqrt(2.0))
  density = math.exp(-a * a / 2.0) / math.sqrt(2.0 * math.pi)
  variance = 1.0 - 2.0 * a * density / mass
  return math.sqrt(variance), 3.0 - 2.0 * a * (a * a + 3.0) * density / mass


def test_inception_v4_kernels_are_drawn_as_slims():
  """Convolutions: slim's variance_scaling_initializer() as TF1 draws it
  (contrib/layers/python/layers/initializers.py: truncated_normal with parameter
  sqrt(1.3 * 2 / fan_in), cut at twice it), so each kernel over that parameter is a unit normal
  truncated to [-2, 2] (standard deviation 0.8796, 0.3% above sqrt(2 / fan_in)). The logits
  layers: slim's fully_connected default, Glorot uniform. Sample standard deviations in
  float64 against the closed forms within 5 standard errors of their sample sizes; pooled over
  every convolution (43 million weights) that is 0.05%, so Keras's plain He initialization
  (0.3% less) fails it."""
  model = _recipe_inception_v4()
  unit_std, fourth = _truncated_normal_moments()

  def check(values, std, fourth_moment):  # fourth_moment in units of std^4
    values = np.asarray(values, np.float64).ravel()
    error = math.sqrt((fourth_moment - 1.0) / len(values)) / 2.0  # of a sample std, relative
    assert abs(values.mean()) < 5.0 * std / math.sqrt(len(values))
    assert np.sqrt(np.mean(values ** 2)) == pytest.approx(std, rel=5.0 * error)

  pooled, convolutions = [], 0
  for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2D):
      kernel = layer.kernel.numpy().astype(np.float64)
      parameter = math.sqrt(2.6 / np.prod(kernel.shape[:-1]))  # TF1's truncated_normal stddev
      assert np.abs(kernel).max() <= 2.0 * parameter * (1 + 1e-6)
      pooled.append((kernel / parameter).ravel())
      convolutions += 1
      if layer.name in ('Conv2d_1a_3x3', 'Mixed_5b_b1_3x3', 'Mixed_6b_b0_1x1',
                        'Mixed_7d_b2_split_3x1', 'AuxLogits_5x5'):
        check(kernel, unit_std * parameter, fourth / unit_std ** 4)
  assert convolutions == 149 + 2  # slim's 149 convolutions and the head's 2
  check(np.concatenate(pooled), unit_std, fourth / unit_std ** 4)
  for name in ('logits', 'aux_logits'):
    kernel = model.get_layer(name).kernel.numpy()
    check(kernel, math.sqrt(2.0 / sum(kernel.shape)), 9.0 / 5.0)  # uniform: 9/5 std^4
    assert not model.get_layer(name).bias.numpy().any()


SMALLEST = {'fc': dict(width=8), 'alexnet': {}, 'resnet56': dict(resnet_blocks=1),
            'inception_v4': dict(width_multiplier=0.05, aux_loss_weight=0)}


@pytest.mark.parametrize('name', models.MODELS)
def test_every_model_and_dataset_pair_builds_for_the_data_or_is_refused_in_one_line(name):
  """`--model=resnet56 --dataset=mnist` once trained into Keras's multi-line error (the CIFAR
  chain made 1-channel images 3-channel-shaped). Every pair of the registries now either takes
  the dataset's own chain and builds for its views (zeros of the raw images' shape run through
  the chain and the network; Inception-v4 at its smallest input, 75 px, whose training on
  mock ImageNet is in tests/test_imagenet.py), or is refused by the recipe in one line naming
  the fix."""
  refused = {}
  for dataset_name, dataset in data.DATASETS.items():
    extra = dict(image_size=75) if dataset.streamed else {}
    try:
      config = recipes.recipe(name, dataset=dataset_name, **SMALLEST[name], **extra)
    except ValueError as e:
      refused[dataset_name] = str(e)
      continue
    raw = np.zeros((2,) + tuple(d or 80 for d in dataset.image_shape), np.float32)
    if config.preprocessing in preprocessing.CHAINS:
      views = preprocessing.CHAINS[config.preprocessing][0](raw, tf.constant([0, 1], tf.int64))
    else:
      train_view = preprocessing.PER_EXAMPLE_CHAINS[config.preprocessing][0]
      views = tf.stack([train_view(tf.cast(image, tf.uint8), tf.constant([0, i], tf.int64),
                                   config.image_size) for i, image in enumerate(raw)])
    assert tuple(views.shape[1:]) == classifier.input_shape(config), (dataset_name, views.shape)
    model = classifier.build_for(config)
    logits = model(views, training=False)
    logits = logits[0] if isinstance(logits, (list, tuple)) else logits
    assert logits.shape == (2, data.num_classes(dataset_name)), dataset_name
  for message in refused.values():
    assert '\n' not in message and len(message) < 300
  # The CIFAR and MNIST networks on ImageNet and Inception-v4 on the small images.
  expected_refusals = set(data.DATASETS) - {'imagenet2012'} if name == 'inception_v4' else {
      'imagenet2012'}
  assert set(refused) == expected_refusals, refused
  if name == 'resnet56':
    assert recipes.recipe(name, dataset='mnist').preprocessing == 'mnist_shift'
    with pytest.raises(ValueError, match='preprocessing "resnet_cifar" takes 32 x 32 x 3 '
                       'images, dataset "mnist" has 28 x 28 x 1; leave preprocessing unset'):
      recipes.recipe(name, dataset='mnist', preprocessing='resnet_cifar')
