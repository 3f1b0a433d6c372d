"""The benchmarks' FLOP counts against hand arithmetic and TensorFlow's own per-op statistics,
and the training benchmark end to end on the smallest model."""
import keras
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops  # pylint: disable=g-direct-tensorflow-import

from experiments import timing
from models import classifier, recipes
from tests.conftest import run_binary


def test_training_flops_by_hand():
  """Conv 3x3, 2 -> 4 channels on 8x8 (same padding), then Dense 256 -> 3.

  Conv: 64 positions x 3 x 3 x 2 x 4 = 4,608 multiply-adds, forward and weight gradient only
  (it is the first layer); Dense: 256 x 3 = 768, forward, weight and input gradients.
  """
  model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, padding='same'),
                            keras.layers.Flatten(), keras.layers.Dense(3)])
  per_example = 2 * 4608 * 2 + 2 * 768 * 3
  assert timing.training_flops(model, batch_size=5) == 5 * per_example


def _tensorflow_forward_flops(model, batch_size):
  """Sum of TensorFlow's registered 'flops' statistic over the Conv2D and MatMul ops of the
  model's forward graph at a fixed batch size."""
  spec = tf.TensorSpec((batch_size,) + tuple(model.input_shape[1:]), tf.float32)
  graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
  return sum(tf_ops.get_stats_for_node_def(graph, op.node_def, 'flops').value
             for op in graph.get_operations() if op.type in ('Conv2D', 'MatMul'))


@pytest.mark.parametrize('name,dataset', [('fc', 'mnist'), ('alexnet', 'cifar10'),
                                          ('resnet56', 'cifar100')])
def test_training_flops_match_tensorflow_statistics(name, dataset):
  """Forward FLOPs by TensorFlow's statistics; training is forward x 3 less the first layer's
  input gradient (its forward FLOPs, also from TensorFlow's statistics)."""
  keras.backend.clear_session()
  model = classifier.build_for(recipes.recipe(name, dataset=dataset))
  batch = 4
  forward = _tensorflow_forward_flops(model, batch)
  first = next(l for l in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
               if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense)))
  first_alone = keras.Model(model.inputs, first.output)
  assert forward > 0
  assert timing.training_flops(model, batch) == 3 * forward - _tensorflow_forward_flops(
      first_alone, batch)


def test_benchmark_train_prints_rates_and_flops():
  result = run_binary('experiments.benchmark_train', '--models=fc', '--dtype_policies=float32',
                      '--steps=3')
  assert result.returncode == 0, result.stderr[-2000:]
  line = next(l for l in result.stdout.splitlines() if l.startswith('fc '))
  assert 'examples/s' in line and 'GFLOP/s of convolutions and matmuls' in line
  assert 'float32 4096x4096 matmul measured here' in line


def test_timing_a_recipe_restores_the_callers_dtype_policy():
  """It once reset the policy to float32 instead of restoring the caller's."""
  keras.config.set_dtype_policy('mixed_bfloat16')
  try:
    config = recipes.recipe('fc', width=8, batch_size=4)
    seconds, model = timing.recipe_step_seconds(config, tf.distribute.get_strategy(), steps=3,
                                                warmup=1)
    assert seconds > 0 and model.dtype_policy.name == 'float32'  # built under its own policy
    assert keras.config.dtype_policy().name == 'mixed_bfloat16'
  finally:
    keras.config.set_dtype_policy('float32')
