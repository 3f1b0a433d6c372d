"""Teacher outputs for a student's training split, computed once and looked up by index.

Cached, not on the fly: each training example's teacher logits come from the teacher's own
evaluation view of it (no augmentation). For the MNIST students, which see un-augmented
images, this equals computing them on the fly; for the augmented CIFAR-10 AlexNet students it
is a documented approximation (the teacher sees the clean image, the student an augmented one).
"""
import numpy as np
import tensorflow as tf

import data


def teacher_train_logits(teacher_dir, student_config, data_dir=None):
  """(logits [N_train, K], labels [N_train]) of the teacher on the student's train split."""
  from models import training  # pylint: disable=g-import-not-at-top  (models imports us lazily)
  teacher, teacher_config, _ = training.load_trained(teacher_dir)
  if (teacher_config.dataset, teacher_config.validation_size) != (
      student_config.dataset, student_config.validation_size):
    raise ValueError(f'teacher {teacher_dir} was trained on a different dataset or split than '
                     'the student; distill within one dataset and validation_size.')
  ds = data.build_dataset(student_config.dataset, 'train', batch_size=1000, training=False,
                          data_dir=data_dir, preprocessing_name=teacher_config.preprocessing,
                          validation_size=student_config.validation_size)
  return training.predict_logits(teacher, ds)


def attach_teacher_logits(dataset, teacher_logits):
  """(x, y, index) batches -> (x, [y, teacher logits]) batches."""
  from distillation.losses import pack_targets  # pylint: disable=g-import-not-at-top
  table = tf.constant(np.asarray(teacher_logits, np.float32))
  return dataset.map(lambda x, y, i: (x, pack_targets(y, tf.gather(table, i))),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
