"""Trains a Transformer translation run with the image runs' machinery (training.fit_resumably:
checkpoints, TensorBoard, progress, divergence stop, chief-only writes) and the same run
directory, plus the run's own vocabulary (vocabulary.model, learned from its training split)."""
import os
import time

import keras
import numpy as np
import tensorflow as tf

from data import translation
from data import run_files, run_lock
from models import recipes, training
from models.losses import TokenCrossEntropy
from models.optimizers import T2TSchedule
from models.transformer import Transformer

VOCABULARY = 'vocabulary.model'


def vocabulary(config, run_dir, data_dir=None, chief=True, wait_seconds=600):
  """The run's Vocabulary, learned once by the chief from the training split (both languages);
  other workers wait for the chief's file."""
  path = os.path.join(run_dir, VOCABULARY)
  if chief:
    english, german = translation.read_parallel(config.dataset, 'train', data_dir)
    translation.learn_vocabulary(english + german, config.vocab_size, path)
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


def compile_model(model, config, jit_compile=False, steps_per_execution=1):
  optimizer = keras.optimizers.Adam(
      T2TSchedule(config.d_model, config.warmup_steps, config.learning_rate_constant),
      beta_1=config.adam_beta1, beta_2=config.adam_beta2, epsilon=config.adam_epsilon)
  model.compile(optimizer=optimizer, jit_compile=jit_compile,
                steps_per_execution=steps_per_execution,
                loss=TokenCrossEntropy(config.label_smoothing, config.label_smoothing_convention))
  optimizer.build(model.trainable_variables)


def load_trained(run_dir):
  """(model, vocabulary, config, data_dir) of a finished translation run."""
  config, data_dir = training.read_run_config(run_dir)
  if not isinstance(config, recipes.TranslationConfig):
    raise run_files.RunDirError(f'{run_dir} is not a translation run.')
  training.finished_results(run_dir)
  vocab = translation.Vocabulary(os.path.join(run_dir, VOCABULARY))
  model = build_model(config, vocab.size)
  training.load_weights(model, os.path.join(run_dir, 'model.weights.h5'))
  return model, vocab, config, data_dir


def train_translation(config, output_dir, *, data_dir=None, strategy=None, jit_compile=False,
                      checkpoint_every=500, log=print, stop_after_steps=None,
                      steps_per_execution=1):
  """Trains (or resumes, or returns the finished) translation run in output_dir."""
  strategy = strategy or tf.distribute.get_strategy()
  chief = run_files.is_chief(strategy)
  if chief:
    training.claim_output_dir(output_dir, config, data_dir)
  results_path = os.path.join(output_dir, 'results.json')
  if run_files.gfile.exists(results_path):
    return run_files.read_json(results_path)
  with run_lock.hold(output_dir, chief, log):  # one writer: a second copy refuses at once
    return _train(config, output_dir, data_dir, strategy, (jit_compile, steps_per_execution),
                  checkpoint_every, log, stop_after_steps, chief)


def _train(config, output_dir, data_dir, strategy, compilation, checkpoint_every, log,
           stop_after_steps, chief):
  vocab = vocabulary(config, output_dir, data_dir, chief)
  english, german = translation.read_parallel(config.dataset, 'train', data_dir)
  sources, targets = translation.encode_pairs(vocab, english, german)

  def build():
    model = build_model(config, vocab.size)
    compile_model(model, config, *compilation)
    return model
  model = training.build_under_policy(config, strategy, build)
  began = time.time()
  done = training.fit_resumably(
      model, model, config, output_dir, config.train_steps,
      lambda start: translation.training_batches(sources, targets, config.batch_size,
                                                 config.max_length, config.seed, start,
                                                 config.train_steps),
      strategy=strategy, checkpoint_every=checkpoint_every, log=log,
      stop_after_steps=stop_after_steps,
      describe=f'{config.model} on {config.dataset}, alpha={config.label_smoothing}')
  if done < config.train_steps:
    return {'steps_trained': done, 'finished': False}
  results = {'config': training.config_to_json(config), 'steps_trained': done, 'finished': True,
             'vocabulary_size': vocab.size,
             'train_seconds_this_session': round(time.time() - began, 1)}
  if chief:
    model.save_weights(os.path.join(output_dir, 'model.weights.h5'))
    run_files.write_json(os.path.join(output_dir, 'results.json'), results)
  return results
