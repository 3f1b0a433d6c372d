"""A student's training objective: the teacher's outputs joined to the student's logits.

on_the_fly: the frozen teacher runs inside the student's training step (under the same
tf.distribute strategy) on its view of the very example the student sees: the same random
draw, through data.preprocessing.matched_views (AlexNet student, ResNet-56 teacher: the same
crop offset and flip, the student's 24x24 crop being the centre of the teacher's 32x32 view).
cached: one pass of the teacher over the clean training images, looked up by example index;
exact for students without augmentation (MNIST), an approximation for augmented ones, faster.
"""
import functools
import os

import keras
import numpy as np
import tensorflow as tf

import data
from data import preprocessing
from data.run_directory import run_files
from distillation.losses import DistillationLoss
from distillation.smoothness import smoothness_index
from models import classifier, run_records, trainer


def teacher_train_logits(teacher_dir, student_config, data_dir=None):
  """(logits [N_train, K], labels [N_train]) of the teacher on the student's clean train split."""
  teacher, teacher_config, _ = classifier.load_trained(teacher_dir)
  _check_same_split(teacher_dir, teacher_config, student_config)
  ds = data.build_dataset(student_config.dataset, 'train', batch_size=1000, training=False,
                          data_dir=data_dir, preprocessing_name=teacher_config.preprocessing,
                          validation_size=student_config.validation_size)
  return classifier.predict_logits(teacher, ds)


TRAIN_LOGITS = 'train_logits.npz'  # beside a teacher's weights: gamma and T* from committed files


def recorded_train_logits(teacher_dir, data_dir=None):
  """(logits, labels) of a finished teacher on its own clean training split, read from
  train_logits.npz beside its weights (computed and written on first use), so that its
  smoothness index and a matched temperature can be recomputed by anyone from the run folder."""
  path = os.path.join(teacher_dir, TRAIN_LOGITS)
  if not run_files.gfile.exists(path):
    config, stored_data_dir = run_records.read_run_config(teacher_dir)
    logits, labels = teacher_train_logits(teacher_dir, config, data_dir or stored_data_dir)
    run_files.write_npz(path, logits=np.asarray(logits, np.float32), labels=labels)
  values = run_files.read_npz(path, fix='delete it: it is computed again from '
                              'model.weights.h5 beside it')
  return values['logits'], values['labels']


def _check_same_split(teacher_dir, teacher_config, student_config):
  if (teacher_config.dataset, teacher_config.validation_size) != (
      student_config.dataset, student_config.validation_size):
    raise ValueError(f'teacher {teacher_dir} was trained on a different dataset or split than '
                     'the student; distill within one dataset and validation_size.')


def teacher_outputs_mode(config):
  """The config's teacher_outputs, resolving None: cached exactly when nothing is random."""
  if config.teacher_outputs:
    return config.teacher_outputs
  return 'cached' if preprocessing.is_deterministic(config.preprocessing) else 'on_the_fly'


class StudentTask(classifier.ClassifierTask):
  """A student (config.teacher_dir set): the distillation loss on [student | teacher] logits,
  the teacher's outputs cached by example index or computed on the fly (teacher_outputs_mode);
  evaluated as every classifier is."""
  splits_by_file = False

  def prepare(self, strategy):
    del strategy
    config = self.config
    self.teacher_config, _ = run_records.read_run_config(config.teacher_dir)
    _check_same_split(config.teacher_dir, self.teacher_config, config)
    self.mode = teacher_outputs_mode(config)
    logits, labels = teacher_train_logits(config.teacher_dir, config, self.data_dir)
    self.teacher_logits = np.asarray(logits, np.float32)
    self.smoothness = smoothness_index(logits, labels, config.distill_temperature)

  def loss(self):
    config = self.config
    return DistillationLoss(config.distillation, config.distill_beta,
                            config.distill_temperature, config.student_temperature,
                            config.label_smoothing)

  def trained_model(self, model):
    if self.mode == 'cached':
      cached = keras.Input((self.teacher_logits.shape[-1],), name='teacher_logits')
      return _joined(model, cached, cached)
    teacher, _, _ = classifier.load_trained(self.config.teacher_dir)
    teacher.trainable = False
    view = keras.Input(teacher.input_shape[1:], name='teacher_view')
    return _joined(model, view, teacher(view, training=False))

  def train_dataset(self, start_step):
    stream = functools.partial(classifier.train_dataset, self.config, self.data_dir, start_step,
                               self.steps)
    if self.mode != 'cached':
      return stream(teacher_view=self.teacher_config.preprocessing)
    table = tf.constant(self.teacher_logits)
    return stream(with_index=True).map(
        lambda x, y, i: ((x, tf.gather(table, i)), y), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)

  def results(self):
    return {'teacher_outputs': self.mode, 'teacher_smoothness_index': self.smoothness}


def train_student(config, output_dir, *, data_dir=None, options=None, callbacks=None):
  """Trains (resumes, or returns the finished) student `config` into output_dir with the one
  loop; as classifier.train_and_evaluate."""
  return trainer.run_task(StudentTask(config, output_dir, data_dir), options, callbacks)


def _joined(student, teacher_input, teacher_logits):
  """Model (student input, teacher input) -> [student logits | teacher logits (no gradient)]."""
  image = keras.Input(student.input_shape[1:], name='image')
  joined = keras.layers.Concatenate(name='student_and_teacher_logits', dtype='float32')(
      [student(image), keras.ops.stop_gradient(teacher_logits)])
  return keras.Model([image, teacher_input], joined, name='student_training')
