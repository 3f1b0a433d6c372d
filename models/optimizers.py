"""SGD with momentum in the TF1 / PyTorch convention, plus per-layer learning-rate multipliers
and TF-slim's weight average.

Keras' SGD folds the learning rate into the momentum buffer and has no dampening; the
paper's recipes need dampening ("gradient smoothing" v <- 0.9 v + 0.1 g for the MNIST
network), tensor2tensor's Nesterov update, and a 0.1 multiplier on the last layer. Keras'
`use_ema` averages the trainable weights only, with a fixed decay; the Inception-v4 recipe
needs TF's ExponentialMovingAverage as TF-slim trained with it (see `MomentumSGD.build`).
"""
import keras
from keras import ops
from keras.src.utils import tracking
import tensorflow as tf


class MomentumSGD(keras.optimizers.Optimizer):
  """v <- mu v + (1 - dampening) g;  w <- w - lr * m_layer * (g + mu v if nesterov else v).

  With momentum 0 this is plain SGD, w <- w - lr * m_layer * g. `lr_multipliers` maps a
  layer name (a component of the variable's path) to its learning-rate multiplier. With
  `average_decay` it keeps TF's exponential moving average of the variables given to `build`
  (optimizer variables, so checkpoints carry it); `swap_average` puts it in their place.
  """

  def __init__(self, learning_rate=0.01, momentum=0.0, dampening=0.0, nesterov=False,
               lr_multipliers=None, average_decay=0.0, name='momentum_sgd', **kwargs):
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)
    if not 0.0 <= momentum < 1.0 or not 0.0 <= dampening < 1.0:
      raise ValueError('momentum and dampening must be in [0, 1).')
    if nesterov and dampening:
      raise ValueError('Nesterov momentum needs dampening 0 (as in PyTorch); set one of them off.')
    if not 0.0 <= average_decay < 1.0:
      raise ValueError('average_decay must be in [0, 1).')
    self.momentum, self.dampening, self.nesterov = float(momentum), float(dampening), nesterov
    self.lr_multipliers = dict(lr_multipliers or {})
    self.average_decay = float(average_decay)

  @tracking.no_automatic_dependency_tracking  # the averaged model variables are not its own
  def build(self, variables, averaged=None):
    """Slots for the trained `variables`; with average_decay, an average of each floating-point
    variable of `averaged` (default `variables`; compile_model passes all of the model's).

    The average is TF-slim's (train_image_classifier.py): tf.train.ExponentialMovingAverage(
    decay, num_updates=global_step) over slim.get_model_variables(), which holds the batch-norm
    moving means and variances too. TF (moving_averages.py) starts each shadow at its
    variable's initial value and per apply() sets shadow -= (1 - d) (shadow - variable), with
    d = min(decay, (1 + n) / (10 + n)) in float32 and n the global step as the op reads it.
    slim groups that op with the gradient update (tf.group, no order between them) and it
    depends on nothing else, so it runs first: step k (0-based) folds in the state after k
    updates, batch-norm statistics included, with n = k; the k = 0 fold (d = 0.1) leaves the
    shadow at the initial values. The TPU Inception reference runs it after the update
    (control_dependencies([train_op])): the same (state after k updates, n = k) folds, each
    one step earlier. That order is the one here, deterministic and inside the compiled step
    (`apply`): after step t's update and its forward pass's batch-norm statistics, with n =
    iterations = t + 1; the shadow starts at the variables' values when this is built. After
    T steps it has folded in the states after 0..T updates, slim's after 0..T-1 (slim folds
    the last in at the start of the next step).
    """
    if self.built:
      return
    super().build(variables)
    self.velocities = (self.add_optimizer_variables(variables, 'velocity')
                       if self.momentum else [])
    self._multipliers = [self._multiplier_for(v.path) for v in variables]
    self._averaged = [v for v in (variables if averaged is None else averaged)
                      if self.average_decay and keras.backend.is_float_dtype(v.dtype)]
    self._averages = [self.add_variable_from_reference(
        v, 'average', initializer=lambda shape, dtype, v=v: ops.cast(v, dtype))
                      for v in self._averaged]

  def apply(self, grads, trainable_variables=None):
    super().apply(grads, trainable_variables)
    if self._averages:  # in the replica context of a distributed step: once, across replicas
      tf.__internal__.distribute.interim.maybe_merge_call(self._update_averages,
                                                          self._distribution_strategy)

  def _update_averages(self, distribution):
    """TF's assign_moving_average on every device's copy (after this step's update)."""
    n = ops.cast(self.iterations, 'float32')
    keep = ops.minimum(self.average_decay, (1.0 + n) / (10.0 + n))
    fold = lambda average, value: average.assign_sub(
        (average - value) * ops.cast(1.0 - keep, average.dtype))
    for average, variable in zip(self._averages, self._averaged):
      distribution.extended.update(average.value, fold, args=(_value(variable),), group=False)

  def swap_average(self):
    """Exchanges the averaged variables and their averages (nothing without average_decay):
    once to evaluate or save the average, twice to train on from the weights. Eager, outside
    the replica context (a callback, or after fit)."""
    for average, variable in zip(self._averages, self._averaged):
      weights = tf.convert_to_tensor(_value(variable))  # a copy (keras.ops' is the variable)
      variable.assign(average)
      average.assign(weights)

  def _multiplier_for(self, path):
    parts = path.split('/')
    return next((m for layer, m in self.lr_multipliers.items() if layer in parts), 1.0)

  def update_step(self, gradient, variable, learning_rate):
    """One fused kernel per variable (TF's ApplyMomentum with v in the place of its accumulator).

    Written as separate ops, mu * v was ready at the start of a step and ran before the forward
    pass, and every term was another pass over the weights: fc trained 6-10% slower.
    """
    index = self._get_variable_index(variable)
    lr = ops.cast(learning_rate, variable.dtype) * self._multipliers[index]
    gradient = ops.cast(gradient, variable.dtype)
    if not self.momentum:
      tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=lr, delta=gradient)
      return
    if self.dampening:
      gradient = gradient * (1.0 - self.dampening)
    tf.raw_ops.ResourceApplyMomentum(
        var=_handle(variable), accum=_handle(self.velocities[index]), lr=lr, grad=gradient,
        momentum=ops.cast(self.momentum, variable.dtype), use_nesterov=self.nesterov)

  def get_config(self):
    return dict(super().get_config(), momentum=self.momentum, dampening=self.dampening,
                nesterov=self.nesterov, lr_multipliers=self.lr_multipliers,
                average_decay=self.average_decay)


def _value(variable):
  """The tf.Variable of a Keras variable (or the tf.Variable given)."""
  return variable.value if isinstance(variable, keras.Variable) else variable


def _handle(variable):
  """The resource handle of a Keras variable, or of a tf.Variable (under tf.distribute, the
  component of the device being updated)."""
  return _value(variable).handle


@keras.saving.register_keras_serializable('models')
class T2TSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """tensor2tensor's lr = constant * min(1, step / warmup) * rsqrt(max(step, warmup)) * d^-0.5
  (constant 2.0 in transformer_base; step counts from 0, so the first update has lr 0)."""

  def __init__(self, d_model, warmup_steps, constant=2.0):
    self.d_model, self.warmup_steps, self.constant = d_model, warmup_steps, constant

  def __call__(self, step):
    step = ops.cast(step, 'float32')
    warmup = float(self.warmup_steps)
    return (self.constant * ops.minimum(1.0, step / warmup)
            * ops.rsqrt(ops.maximum(step, warmup)) * self.d_model ** -0.5)

  def get_config(self):
    return {'d_model': self.d_model, 'warmup_steps': self.warmup_steps,
            'constant': self.constant}


@keras.saving.register_keras_serializable('models')
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
  """lr(step) = schedule(step) * min(1, (step + 1) / warmup_steps): a linear ramp from zero
  into a schedule or constant (Goyal et al.'s warm-up, as Model Garden's ImageNet configs)."""

  def __init__(self, schedule, warmup_steps):
    if isinstance(schedule, dict):  # from get_config
      schedule = keras.optimizers.schedules.deserialize(schedule)
    self.schedule, self.warmup_steps = schedule, warmup_steps

  def __call__(self, step):
    ramp = ops.minimum(1.0, (ops.cast(step, 'float32') + 1.0) / self.warmup_steps)
    return ramp * (self.schedule(step) if callable(self.schedule) else self.schedule)

  def get_config(self):
    schedule = self.schedule
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
      schedule = keras.optimizers.schedules.serialize(schedule)
    return {'schedule': schedule, 'warmup_steps': self.warmup_steps}
