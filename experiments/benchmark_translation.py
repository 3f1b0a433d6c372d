r"""Translation speed: training target tokens/s (steady state) and beam-search sentences/s.

  python -m experiments.benchmark_translation [--model=transformer_small] [--steps=20] \
      [--sentences=200] [--beam_size=4] [--fixed_steps=40] [--run_dir=FINISHED_TRANSLATION_RUN]
Real Multi30k batches of the recipe's token budget with a freshly learned vocabulary (kept in
--work_dir) and untrained weights, so decoding runs to the length limit more often than a
trained model would (an upper bound on decoding time); with --run_dir, the finished run's
model, vocabulary and recipe instead (the decoding speed of real evaluations).

Decoding is also timed at a fixed number of steps (end of sentence disabled), the same work for
any decoder, with its matmul GFLOP/s against this process's float32 matmul peak.
"""
import time

from absl import flags
import numpy as np
import tensorflow as tf

from data import translation
from experiments import common
from experiments.timing import matmul_peak_flops, median_seconds, steady_step_seconds
from models import beam_search, recipes, translation_eval, translation_training

flags.DEFINE_enum('model', 'transformer_small', ['transformer_small', 'transformer_base'],
                  'Translation recipe.')
flags.DEFINE_integer('steps', 20, 'Timed training steps (after 5 warm-up steps).', lower_bound=3)
flags.DEFINE_integer('sentences', 200, 'Validation sentences decoded.', lower_bound=1)
flags.DEFINE_integer('beam_size', 4, 'Beam size.', lower_bound=1)
flags.DEFINE_integer('fixed_steps', 40, 'Steps of the fixed-length decoding measurement.',
                     lower_bound=1)
flags.DEFINE_integer('fixed_batch', 64, 'Sentences of the fixed-length decoding measurement.',
                     lower_bound=1)
flags.DEFINE_string('work_dir', '/tmp/benchmark_translation', 'Where the vocabulary is kept.')
flags.DEFINE_string('run_dir', None, 'Time this finished translation run (trained weights).')
common.define_data_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if FLAGS.run_dir:
    model, vocab, config, _ = translation_training.load_trained(FLAGS.run_dir)
  else:
    config = recipes.recipe(FLAGS.model, dataset='multi30k')
    vocab = translation_training.vocabulary(config, FLAGS.work_dir, FLAGS.data_dir)
    model = translation_training.build_model(config, vocab.size)
  val_en, _ = translation.read_parallel(config.dataset, 'validation', FLAGS.data_dir)
  val_sources, _ = translation.encode_pairs(vocab, val_en[:FLAGS.sentences],
                                            val_en[:FLAGS.sentences])
  translation_eval.translate(model, vocab, val_sources[:8], FLAGS.beam_size)  # traces the search
  start = time.perf_counter()
  translation_eval.translate(model, vocab, val_sources, FLAGS.beam_size)
  rate = len(val_sources) / (time.perf_counter() - start)
  print(f'{config.model}: beam {FLAGS.beam_size} decoding {rate:.1f} sentences/s '
        f'({len(val_sources)} validation sentences; a 1,014-sentence set takes '
        f'{1014 / rate / 60:.1f} min per temperature)', flush=True)
  fixed, _ = translation.encode_pairs(vocab, val_en[:FLAGS.fixed_batch],
                                      val_en[:FLAGS.fixed_batch])
  (source, _), _ = next(translation.evaluation_batches(fixed, fixed, len(fixed)))
  decode = lambda: beam_search.beam_search(model, source, FLAGS.beam_size,
                                           fixed_steps=FLAGS.fixed_steps)
  seconds = median_seconds(decode)
  flops = _decoding_flops(model, len(fixed), FLAGS.beam_size, source.shape[1],
                          FLAGS.fixed_steps)
  peak = matmul_peak_flops('float32')
  print(f'{config.model}: {FLAGS.fixed_steps} fixed steps (no end of sentence), '
        f'{len(fixed)} sentences x beam {FLAGS.beam_size}: {len(fixed) / seconds:.1f} '
        f'sentences/s, {1000 * seconds / FLAGS.fixed_steps:.1f} ms/step, '
        f'{flops / seconds / 1e9:.1f} GFLOP/s of matmuls = {100 * flops / seconds / peak:.1f}% '
        f'of the {peak / 1e9:.0f} GFLOP/s float32 4096x4096 matmul measured here', flush=True)
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


def _decoding_flops(model, sentences, beam, source_length, steps):
  """Matmul FLOPs (2 per multiply-add) of decoding `steps` steps of `sentences` x `beam`
  hypotheses as the Transformer computes them: the encoder and the cross-attention keys and
  values once per sentence, self-attention at step t over the t + 1 filled positions."""
  d, ffn = model.d_model, model.decoder_blocks[0]['ffn'].hidden.units
  attention = lambda projections, keys: 2 * (projections * d * d + 2 * keys * d)  # per query
  per_sentence = source_length * (
      len(model.encoder_blocks) * (attention(4, source_length) + 4 * d * ffn)
      + len(model.decoder_blocks) * attention(2, 0))
  steps_flops = sum(len(model.decoder_blocks) * (attention(4, t + 1) + attention(2, source_length)
                                                 + 4 * d * ffn) + 2 * d * model.vocab_size
                    for t in range(steps))
  return sentences * (per_sentence + beam * steps_flops)


if __name__ == '__main__':
  common.run(main)
