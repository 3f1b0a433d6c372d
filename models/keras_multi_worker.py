"""Makes Keras 3 `fit` run under MultiWorkerMirroredStrategy (keras-team/keras#20585).

Keras 3.15's TensorFlow trainer fails there in two places, both reductions across workers that
its MirroredStrategy path does locally: the symbolic build mean-reduces a *data batch* eagerly
(only to learn its shapes), and every step mean-reduces scalar logs along an axis they do not
have. `enable(strategy)` replaces just those two functions, and only for a multi-worker strategy:
the build takes this worker's own batch, the logs a cross-worker mean. The training step itself,
gradient all-reduce included, is Keras' own.
"""
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer

_ORIGINAL_REDUCE = keras_tf_trainer.reduce_per_replica
_ORIGINAL_BUILD = keras_tf_trainer.TensorFlowTrainer._maybe_symbolic_build  # pylint: disable=protected-access


def _local(strategy, value):
  if isinstance(value, tf.distribute.DistributedValues):
    return strategy.experimental_local_results(value)[0]
  return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
  if not is_multi_worker(self.distribute_strategy):
    return _ORIGINAL_BUILD(self, iterator=iterator, data_batch=data_batch)
  if iterator is not None:
    for _, _, batches in iterator:
      data_batch = tf.nest.map_structure(lambda v: _local(self.distribute_strategy, v),
                                         next(batches))
      break
  with self.distribute_strategy.scope():
    self._symbolic_build(data_batch=data_batch)  # pylint: disable=protected-access


def _reduce_per_replica(values, strategy, reduction):
  if is_multi_worker(strategy) and reduction in ('auto', 'mean'):
    return tf.nest.map_structure(
        lambda v: strategy.reduce('MEAN', v, axis=None)
        if isinstance(v, tf.distribute.DistributedValues) else v, values)
  return _ORIGINAL_REDUCE(values, strategy, reduction)


def is_multi_worker(strategy):
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def enable(strategy):
  """Installs the two replacements when `strategy` is multi-worker (idempotent)."""
  if is_multi_worker(strategy):
    keras_tf_trainer.reduce_per_replica = _reduce_per_replica
    keras_tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build  # pylint: disable=protected-access
