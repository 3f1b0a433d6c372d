r"""Training examples/second of each model with its recipe's optimizer and batch size, per policy.

  python -m experiments.benchmark_train [--steps=40] [--models=fc,alexnet,resnet56] \
      [--dtype_policies=float32,mixed_bfloat16]
Feeds one cached synthetic batch, so the figure is the model's step cost alone. The rate comes
from the median interval between consecutive step ends after warm-up (steady state), not from
whole fit() calls, whose start and return stall for seconds and made earlier figures swing 2x.
Steps per call are the training binaries' (--steps_per_execution, 0: as they choose it).
Each line also gives the convolution and matmul GFLOP/s achieved (`timing.training_flops`)
against a 4096x4096 matmul measured in the same process, in float32 for float32 and in bfloat16
for mixed_bfloat16: how much of the machine the step uses, comparable across machines.
"""

from absl import flags
import keras

from experiments import common, timing
from models import recipes, trainer

flags.DEFINE_list('models', ['fc', 'alexnet', 'resnet56'], 'Models to time.')
flags.DEFINE_list('dtype_policies', ['float32', 'mixed_bfloat16'], 'Keras dtype policies.')
flags.DEFINE_integer('steps', 40, 'Timed steps per model (after 5 warm-up steps).', lower_bound=3)
flags.register_validator('models', lambda v: set(v) <= {'fc', 'alexnet', 'resnet56'},
                         '--models must be a comma-separated subset of fc,alexnet,resnet56.')
flags.register_validator('dtype_policies', lambda v: set(v) <= {'float32', 'mixed_bfloat16'},
                         '--dtype_policies must be a subset of float32,mixed_bfloat16.')
common.define_runtime_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  strategy = common.make_strategy()
  peaks = {}  # compute dtype -> matmul FLOP/s
  for name in FLAGS.models:
    rates = {}
    for policy in FLAGS.dtype_policies:
      config = recipes.recipe(name, train_steps=1000, dtype_policy=policy)
      per_call = trainer.resolve_steps_per_execution(
          FLAGS.steps_per_execution, [FLAGS.checkpoint_every, config.train_steps])
      seconds, model = timing.recipe_step_seconds(config, strategy, FLAGS.steps,
                                                  jit_compile=FLAGS.jit_compile,
                                                  steps_per_execution=per_call)
      rates[policy] = config.batch_size / seconds
      achieved = timing.training_flops(model, config.batch_size) / seconds
      dtype = keras.DTypePolicy(policy).compute_dtype
      if dtype not in peaks:
        peaks[dtype] = timing.matmul_peak_flops(dtype)
      print(f'{name:9s} {policy:15s} batch {config.batch_size:4d} {seconds * 1000:8.1f} ms/step '
            f'{rates[policy]:9,.0f} examples/s ({strategy.num_replicas_in_sync} replica(s)); '
            f'{achieved / 1e9:5.0f} GFLOP/s of convolutions and matmuls = '
            f'{100 * achieved / peaks[dtype]:.0f}% of the {peaks[dtype] / 1e9:.0f} GFLOP/s '
            f'{dtype} 4096x4096 matmul measured here', flush=True)
    if len(rates) == 2:
      print(f'{name:9s} mixed_bfloat16 / float32 speed: '
            f'{rates["mixed_bfloat16"] / rates["float32"]:.2f}x', flush=True)


if __name__ == '__main__':
  common.run(main)
