"""Choosing the tf.distribute strategy a run trains under (--strategy, --num_cpu_devices)."""
import tensorflow as tf


def configure_cpu_devices(num_cpu_devices):
  """Splits the CPU into logical devices (must run before TensorFlow initializes)."""
  if num_cpu_devices > 1:
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)


def build_strategy(name='default', tpu=None):
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    devices = tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU')
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or '')
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f'unknown strategy "{name}"; choose default, mirrored, multi_worker or tpu.')
