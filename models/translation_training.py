"""The Transformer translation task on the one training loop (trainer.run_task: checkpoints,
TensorBoard, progress, divergence stop, chief-only writes, the same run directory), plus the
run's own vocabulary (vocabulary.model, learned from its training split)."""
import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from data import translation
from data.run_directory import run_files
from models import recipes, run_records, trainer, translation_eval
from models.losses import TokenCrossEntropy
from models.optimizers import T2TSchedule
from models.transformer import Transformer

VOCABULARY = 'vocabulary.model'


def vocabulary(config, run_dir, data_dir=None, chief=True, wait_seconds=600):
  """The run's Vocabulary, learned once by the chief from the training split (both languages;
  a bounded sample of WMT14); other workers wait for the chief's file."""
  path = os.path.join(run_dir, VOCABULARY)
  if chief and not run_files.gfile.exists(path):
    translation.learn_vocabulary(translation.vocabulary_sentences(config.dataset, data_dir),
                                 config.vocab_size, path)
  deadline = time.time() + wait_seconds
  while not run_files.gfile.exists(path):
    if time.time() > deadline:
      raise run_files.RunDirError(f'{path} did not appear; the chief writes it first.')
    time.sleep(2)
  return translation.Vocabulary(path)


def build_model(config, vocab_size):
  model = Transformer(vocab_size, config.encoder_layers, config.decoder_layers, config.d_model,
                      config.num_heads, config.ffn, config.dropout, config.attention_dropout,
                      config.relu_dropout, config.max_length, name=config.model)
  ids = np.ones((1, 2), np.int32)
  model((ids, ids))  # creates the variables
  return model


def compile_model(model, config, jit_compile=False):
  optimizer = keras.optimizers.Adam(
      T2TSchedule(config.d_model, config.warmup_steps, config.learning_rate_constant),
      beta_1=config.adam_beta1, beta_2=config.adam_beta2, epsilon=config.adam_epsilon)
  model.compile(optimizer=optimizer, jit_compile=jit_compile,
                loss=TokenCrossEntropy(config.label_smoothing, config.label_smoothing_convention))
  optimizer.build(model.trainable_variables)


def finished_config(run_dir):
  """(config, data_dir) of a finished translation run, or a RunDirError; reads no weights."""
  config, data_dir = run_records.read_run_config(run_dir)
  if not isinstance(config, recipes.TranslationConfig):
    raise run_files.RunDirError(f'{run_dir} is not a translation run.')
  run_records.finished_results(run_dir)
  return config, data_dir


def load_trained(run_dir):
  """(model, vocabulary, config, data_dir) of a finished translation run."""
  config, data_dir = finished_config(run_dir)
  vocab = translation.Vocabulary(os.path.join(run_dir, VOCABULARY))
  model = build_model(config, vocab.size)
  run_records.load_weights(model, os.path.join(run_dir, 'model.weights.h5'))
  return model, vocab, config, data_dir


def batch_settings(config, strategy):
  """The run's batching, as keyword arguments of translation.training_batches and
  streamed_training_batches: config.batching ('auto': 'buckets' on TPUs, which compile one
  program per input shape, 'dynamic' elsewhere; a TPU refuses 'dynamic'), 'fixed' padding to
  fixed_length (default max_length) as tensor2tensor's TPU input does, and the token budget per
  replica (tensor2tensor's per-shard batch_size) on the strategy's replicas."""
  tpu = isinstance(strategy, tf.distribute.TPUStrategy)
  mode = config.batching
  if mode == 'auto':
    mode = 'buckets' if tpu else 'dynamic'
  elif tpu and mode == 'dynamic':
    raise ValueError('--batching=dynamic gives batches ever new shapes, each compiled anew on a '
                     'TPU; choose buckets or fixed (or auto).')
  length = (config.fixed_length or config.max_length) if mode == 'fixed' else config.max_length
  return dict(token_budget=config.batch_size, max_length=length, seed=config.seed,
              batching=mode, replicas=strategy.num_replicas_in_sync)


class TranslationTask(trainer.Task):
  """The Transformer on a parallel corpus with the (smoothed) token cross-entropy; a step's
  batch holds batch_size tokens per replica (batch_settings), split among the replicas. With
  `evaluation` (translation_eval.EvalSettings) a finished run is evaluated as every run is:
  next-token calibration and BLEU in results.json's metrics, the details in
  translation_eval.json and hypotheses/ beside it."""

  def __init__(self, config, output_dir, data_dir=None, evaluation=None, log=print):
    super().__init__(config, output_dir, data_dir)
    self.evaluation, self.log = evaluation, log

  @property
  def steps(self):
    return self.config.train_steps

  def prepare(self, strategy):
    self.settings = batch_settings(self.config, strategy)
    self.vocab = vocabulary(self.config, self.output_dir, self.data_dir,
                            run_files.is_chief(strategy))
    self.stream = _training_stream(self.config, self.vocab, self.output_dir, self.data_dir,
                                   self.settings)

  def build(self, jit_compile):
    model = build_model(self.config, self.vocab.size)
    compile_model(model, self.config, jit_compile)
    return model, model

  def train_dataset(self, start_step):
    return self.stream(start_step)

  def evaluate(self, model):
    if self.evaluation is None:
      return None
    # A tokenizer made now: the trainer's clear_session dropped the one made in prepare.
    vocab = translation.Vocabulary(os.path.join(self.output_dir, VOCABULARY))
    return translation_eval.headline(translation_eval.evaluate_model(
        model, vocab, self.config, self.output_dir, self.evaluation, self.data_dir, self.log))

  def results(self):
    return {'vocabulary_size': self.vocab.size, 'batching': self.settings['batching'],
            'replicas': self.settings['replicas'],
            'tokens_per_step': self.settings['token_budget'] * self.settings['replicas']}


def train_translation(config, output_dir, *, data_dir=None, options=None, evaluation=None):
  """Trains (or resumes, or returns the finished) translation run in output_dir with the one
  training loop (trainer.run_task), evaluating it at the end with `evaluation`
  (translation_eval.EvalSettings, or None); options: trainer.RunOptions."""
  options = options or trainer.RunOptions()
  return trainer.run_task(TranslationTask(config, output_dir, data_dir, evaluation, options.log),
                          options)


def evaluate_run(run_dir, settings, data_dir=None, log=print, with_logits=True):
  """A finished run's evaluation with `settings` (translation_eval.evaluate_model): its stored
  translation_eval.json when made with the same settings, else computed now, with (run_dir,
  config, data_dir) under '_run' and, with `with_logits`, the validation logits under '_logits'
  for the reliability diagram. A stored evaluation without logits reads no weights:
  weights are not committed, so a run trained and evaluated in an earlier session on another
  machine still counts."""
  path = os.path.join(run_dir, translation_eval.EVAL)
  config, stored_data_dir = finished_config(run_dir)
  data_dir = data_dir or stored_data_dir
  run = (run_dir, config, data_dir)
  stored = run_files.read_json(path) if run_files.gfile.exists(path) else None
  if stored and stored['settings'] != dataclasses.asdict(settings):
    stored = None  # made with other settings: evaluated again
  if stored and not with_logits:
    return {**stored, '_run': run}
  model, vocab, _, _ = load_trained(run_dir)
  if stored:
    sources, targets, _ = translation_eval.split_pairs(config, 'validation', vocab, data_dir,
                                                       settings.max_sentences)
    return {**stored, '_logits': translation_eval.token_logits(model, sources, targets),
            '_run': run}
  return {**translation_eval.evaluate_model(model, vocab, config, run_dir, settings, data_dir,
                                            log), '_run': run}


def _training_stream(config, vocab, run_dir, data_dir, settings):
  """start step -> the run's training batches: Multi30k tokenized once in memory, WMT14
  streamed (4.5 million pairs never held in memory; its tokenizer is made with the stream,
  after the model's clear_session, which would drop an earlier one)."""
  if config.dataset == 'wmt14':
    return lambda start: translation.streamed_training_batches(
        translation.wmt14_pairs('train', data_dir),
        translation.Vocabulary(os.path.join(run_dir, VOCABULARY)), start_step=start,
        end_step=config.train_steps, **settings)
  english, german = translation.read_parallel(config.dataset, 'train', data_dir)
  sources, targets = translation.encode_pairs(vocab, english, german)
  return lambda start: translation.training_batches(
      sources, targets, start_step=start, end_step=config.train_steps, **settings)
