"""TF-slim's Inception preprocessing (slim/preprocessing/inception_preprocessing.py, fast mode,
the setting of slim's ImageNet training) per example, with stateless randomness so a streamed
example's augmentation is a pure function of (seed, its position in the stream).

Training: a distorted bounding-box crop of the whole image (at least 10% of it covered, aspect
ratio 3/4 to 4/3, area 5% to 100%), bilinear resize, random left-right flip, brightness (max
delta 32/255) then saturation ([0.5, 1.5]) distortion. Evaluation: the central 87.5%, bilinear
resize. Both scale to [-1, 1].

The colour order is fixed, as slim's: its train_image_classifier.py calls preprocess_image
without fast_mode (default True), and preprocess_for_train draws the distort_color ordering
from `num_distort_cases = 1 if fast_mode else 4` cases, so fast mode always takes ordering 0,
brightness then saturation (the same line is in tensorflow/tpu's copy,
models/experimental/inception/inception_preprocessing.py, from its first commit, 2018-02-06).
Only older slim copies drew from 4 cases in fast mode too (ordering 0 one time in four,
saturation first otherwise); the two orders differ only where the scaled saturation is clamped
at 1, since a brightness shift of all channels commutes with scaling HSV saturation.
"""
import tensorflow as tf

IMAGE_SIZE = 299  # Inception-v4's input side
EVAL_CENTRAL_FRACTION = 0.875


def _to_unit_float(image):
  return tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]


def _to_symmetric(image):
  return (image - 0.5) * 2.0


def train_image(image, seed, size=IMAGE_SIZE):
  """One training view of a uint8 HWC image of any size; seed: int64 [2] (stateless)."""
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
  image = _to_unit_float(image)
  whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), whole, seed=seeds[0], min_object_covered=0.1,
      aspect_ratio_range=(0.75, 1.33), area_range=(0.05, 1.0), max_attempts=100,
      use_image_if_no_bounding_boxes=True)
  image = tf.slice(image, begin, crop_size)
  image = tf.image.resize(image, [size, size], method='bilinear')
  image = tf.image.stateless_random_flip_left_right(image, seeds[1])
  image = tf.image.stateless_random_brightness(image, 32.0 / 255.0, seeds[2])
  image = tf.image.stateless_random_saturation(image, 0.5, 1.5, seeds[3])
  return _to_symmetric(tf.clip_by_value(image, 0.0, 1.0))


def eval_image(image, size=IMAGE_SIZE):
  """The evaluation view: the central 87.5% of the image, resized to size x size."""
  image = tf.image.central_crop(_to_unit_float(image), EVAL_CENTRAL_FRACTION)
  return _to_symmetric(tf.image.resize(image, [size, size], method='bilinear'))
