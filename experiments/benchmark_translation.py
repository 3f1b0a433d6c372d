r"""Translation speed: training target tokens/s (steady state) and beam-search sentences/s.

  python -m experiments.benchmark_translation [--model=transformer_small] [--steps=20] \
      [--sentences=200] [--beam_size=4] [--run_dir=FINISHED_TRANSLATION_RUN]
Real Multi30k batches of the recipe's token budget with a freshly learned vocabulary (kept in
--work_dir) and untrained weights, so decoding runs to the length limit more often than a
trained model would (an upper bound on decoding time); with --run_dir, the finished run's
model, vocabulary and recipe instead (the decoding speed of real evaluations).
"""
import time

from absl import flags

from experiments import common

flags.DEFINE_enum('model', 'transformer_small', ['transformer_small', 'transformer_base'],
                  'Translation recipe.')
flags.DEFINE_integer('steps', 20, 'Timed training steps (after 5 warm-up steps).', lower_bound=3)
flags.DEFINE_integer('sentences', 200, 'Validation sentences decoded.', lower_bound=1)
flags.DEFINE_integer('beam_size', 4, 'Beam size.', lower_bound=1)
flags.DEFINE_string('work_dir', '/tmp/benchmark_translation', 'Where the vocabulary is kept.')
flags.DEFINE_string('run_dir', None, 'Time this finished translation run (trained weights).')
common.define_data_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from data import translation  # pylint: disable=g-import-not-at-top
  from experiments.timing import steady_step_seconds  # pylint: disable=g-import-not-at-top
  from models import recipes, translation_eval, translation_training  # pylint: disable=g-import-not-at-top
  if FLAGS.run_dir:
    model, vocab, config, _ = translation_training.load_trained(FLAGS.run_dir)
  else:
    config = recipes.translation_recipe(FLAGS.model, dataset='multi30k')
    vocab = translation_training.vocabulary(config, FLAGS.work_dir, FLAGS.data_dir)
    model = translation_training.build_model(config, vocab.size)
  val_en, _ = translation.read_parallel(config.dataset, 'validation', FLAGS.data_dir)
  val_sources, _ = translation.encode_pairs(vocab, val_en[:FLAGS.sentences],
                                            val_en[:FLAGS.sentences])
  translation_eval.translate(model, vocab, val_sources[:8], FLAGS.beam_size)  # traces the step
  start = time.perf_counter()
  translation_eval.translate(model, vocab, val_sources, FLAGS.beam_size)
  rate = len(val_sources) / (time.perf_counter() - start)
  print(f'{config.model}: beam {FLAGS.beam_size} decoding {rate:.1f} sentences/s '
        f'({len(val_sources)} validation sentences; a 1,014-sentence set takes '
        f'{1014 / rate / 60:.1f} min per temperature)', flush=True)
  english, german = translation.read_parallel(config.dataset, 'train', FLAGS.data_dir)
  sources, targets = translation.encode_pairs(vocab, english, german)
  translation_training.compile_model(model, config)  # trains: after the decoding
  stream = translation.training_batches(sources, targets, config.batch_size, config.max_length,
                                        0, 0, FLAGS.steps + 5)
  real_tokens = np.mean([int(tf.reduce_sum(tf.cast(t != 0, tf.int32)))
                         for _, t in stream.skip(5)])
  seconds = steady_step_seconds(model, stream.repeat(), FLAGS.steps)
  print(f'{config.model}: {seconds:.2f} s/step, {real_tokens:.0f} real target tokens/step, '
        f'{real_tokens / seconds:,.0f} target tokens/s ({model.count_params():,} parameters)',
        flush=True)


if __name__ == '__main__':
  common.run(main)
