"""Translation data (paper Section 3): parallel text, a shared subword vocabulary, token batches.

- Multi30k EN->DE from its raw files (train, val, test2016: one sentence per line, UTF-8),
  WMT14 EN-DE from a tensorflow-datasets copy (`wmt14_translate/de-en`, prepared or --download).
- One SentencePiece vocabulary for both languages, learned from the training split only and
  stored (vocabulary.model) so every later step and evaluation of a run uses the same one.
  Ids: 0 padding (also the decoder's start symbol, as in tensor2tensor), 1 end of sentence,
  2 unknown. Text is tokenized inside tf.data with tensorflow_text's SentencepieceTokenizer,
  which detokenizes losslessly.
- Training batches are of similar-length pairs, at most `max_length` tokens each, and hold up
  to `token_budget` tokens per replica (source or target, padding included; tensor2tensor's
  per-shard batch_size), R times that on R replicas; their order is a pure function of
  (seed, step), so a resumed run sees the batches an uninterrupted run would. Batchings:
  'dynamic' pads each batch to its longest pair (shapes vary: CPU/GPU); 'buckets' pads to
  tensor2tensor's length buckets with a fixed size per bucket; 'fixed' pads every pair to
  max_length as tensor2tensor's TPU input_fn does (one shape; longer pairs dropped).
"""
import io
import os

import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as text

from data.run_directory import run_files
from data.readers import DataError
from data.sources import DEFAULT_DATA_DIR

PAD, EOS, UNK = 0, 1, 2
BATCHINGS = ('dynamic', 'buckets', 'fixed')
MULTI30K_FILES = {'train': 'train', 'validation': 'val', 'test': 'test2016'}
SOURCE, TARGET = 'en', 'de'


def read_multi30k(data_dir, split):
  """(English sentences, German sentences) of one split, line-aligned."""
  if split not in MULTI30K_FILES:
    raise DataError(f'unknown split "{split}"; choose one of {", ".join(MULTI30K_FILES)}.')
  folder = os.path.join(data_dir, 'multi30k')
  sides = []
  for language in (SOURCE, TARGET):
    path = os.path.join(folder, f'{MULTI30K_FILES[split]}.{language}')
    if not os.path.isfile(path):
      raise DataError(f'{path} not found: expected the Multi30k raw files '
                      f'(train, val, test2016).{{en,de}} in {folder}.')
    with open(path, 'rb') as f:
      raw = f.read()
    try:
      text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
      raise DataError(f'{path} is not UTF-8 text (byte {e.start}); convert it to UTF-8.') \
          from None
    sides.append(text.rstrip('\n').split('\n'))
  if len(sides[0]) != len(sides[1]):
    raise DataError(f'{MULTI30K_FILES[split]}.en has {len(sides[0])} lines but '
                    f'{MULTI30K_FILES[split]}.de has {len(sides[1])}; the two sides must be '
                    'line-aligned.')
  return sides[0], sides[1]


WMT14 = 'wmt14_translate/de-en'
VOCABULARY_SAMPLE_PAIRS = 1_000_000  # WMT pairs a vocabulary is learned from (SentencePiece
#                                      samples 2M sentences of its input anyway)


def wmt14_pairs(split, data_dir=None, download=False):
  """tf.data of (English, German) strings of wmt14_translate/de-en in the prepared order (tfds
  shuffles when it writes), read shard by shard, never held in memory (newstest2013 is its
  validation split, as in translate_ende_wmt32k)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  builder = tfds.builder(WMT14, data_dir=data_dir)
  if download:
    builder.download_and_prepare()
  try:
    pairs = builder.as_dataset(split=split, shuffle_files=False)
  except (AssertionError, tf.errors.NotFoundError):
    raise DataError(f'no prepared {WMT14} found in {data_dir or "the tfds default folder"}; '
                    'pass --download when online.') from None
  return pairs.map(lambda pair: (pair['en'], pair['de']))


def read_wmt14(split, data_dir=None, download=False, limit=None):
  """(English, German) lists of a WMT14 split (evaluation splits; at most `limit` pairs)."""
  pairs = wmt14_pairs(split, data_dir, download)
  english, german = [], []
  for en, de in tfds_numpy(pairs.take(limit) if limit else pairs):
    english.append(en.decode())
    german.append(de.decode())
  return english, german


def tfds_numpy(dataset):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  return tfds.as_numpy(dataset)


def read_parallel(dataset, split, data_dir=None, download=False):
  if dataset == 'multi30k':
    return read_multi30k(data_dir or DEFAULT_DATA_DIR, split)
  if dataset == 'wmt14':
    return read_wmt14(split, data_dir, download)
  raise DataError(f'unknown translation dataset "{dataset}"; choose multi30k or wmt14.')


def vocabulary_sentences(dataset, data_dir=None):
  """What a run's vocabulary is learned from: the training split, both languages; for WMT14 its
  first VOCABULARY_SAMPLE_PAIRS pairs (a bounded sample of a random order)."""
  if dataset == 'wmt14':
    english, german = read_wmt14('train', data_dir, limit=VOCABULARY_SAMPLE_PAIRS)
  else:
    english, german = read_parallel(dataset, 'train', data_dir)
  return english + german


def learn_vocabulary(sentences, vocab_size, path):
  """Trains a SentencePiece model on `sentences` into `path` (once: an existing one is kept)."""
  if tf.io.gfile.exists(path):
    return path
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
      model_type='unigram', character_coverage=1.0, pad_id=PAD, eos_id=EOS, unk_id=UNK,
      # No NFKC rewriting and no whitespace collapsing: decoded text is byte-comparable to
      # the raw references.
      normalization_rule_name='identity', remove_extra_whitespaces=False,
      bos_id=-1, input_sentence_size=2_000_000, shuffle_input_sentence=True,
      num_threads=2, minloglevel=2)
  run_files.make_dir(os.path.dirname(path))
  run_files.write_bytes(path, model.getvalue())
  return path


class Vocabulary:
  """A stored SentencePiece model applied in TensorFlow (tokenize in tf.data, detokenize)."""

  def __init__(self, path):
    with tf.io.gfile.GFile(path, 'rb') as f:
      self.proto = f.read()
    try:
      self.tokenizer = text.SentencepieceTokenizer(model=self.proto, add_eos=True)
      self.size = int(self.tokenizer.vocab_size())
    except tf.errors.OpError:
      raise run_files.unreadable(
          path, 'not a SentencePiece model', 'restore it from a copy of this run (a model is '
          'tied to the vocabulary it was trained with), or delete the run directory and train '
          'it again') from None

  def encode(self, sentences):
    """tf.RaggedTensor of ids, each sentence ending with EOS."""
    return self.tokenizer.tokenize(sentences)

  def decode(self, ids):
    """Plain text of id sequences (EOS and anything after it dropped, padding ignored)."""
    texts = []
    for row in ids:
      row = [int(i) for i in row]
      if EOS in row:
        row = row[:row.index(EOS)]
      texts.append(self.tokenizer.detokenize(
          tf.constant([i for i in row if i != PAD], tf.int32)).numpy().decode())
    return texts


def encode_pairs(vocabulary, sources, targets, batch_size=1024):
  """(source ids, target ids) as lists of int32 arrays, tokenized in a tf.data pipeline."""
  ds = tf.data.Dataset.from_tensor_slices((sources, targets)).batch(batch_size).map(
      lambda s, t: (vocabulary.encode(s), vocabulary.encode(t)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  out_s, out_t = [], []
  for s, t in ds:
    out_s += _rows(s)
    out_t += _rows(t)
  return out_s, out_t


def _rows(ragged):
  """A 2-D RaggedTensor's rows as int32 arrays (views of one buffer; no Python per token)."""
  splits = ragged.row_splits.numpy()
  return np.split(ragged.flat_values.numpy().astype(np.int32), splits[1:-1])


def batch_plan(lengths, token_budget, seed, epoch, pool=100):
  """Index lists of one epoch's batches: a seeded permutation, sorted by length within pools of
  `pool` batches' worth of examples (similar lengths share a batch, as tensor2tensor's buckets
  do), cut so that batch size * longest sequence <= token_budget, then a seeded batch order."""
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths))
  batches = []
  mean_batch = max(1, token_budget // max(1, int(np.mean(lengths))))
  for start in range(0, len(order), pool * mean_batch):
    chunk = order[start:start + pool * mean_batch]
    chunk = chunk[np.argsort(lengths[chunk], kind='stable')]
    current, longest = [], 0
    for i in chunk:
      if current and (len(current) + 1) * max(longest, lengths[i]) > token_budget:
        batches.append(current)
        current, longest = [], 0
      current.append(int(i))
      longest = max(longest, int(lengths[i]))
    if current:
      batches.append(current)
  return [batches[i] for i in rng.permutation(len(batches))]


def bucket_boundaries(max_length, min_length=8, step=1.1):
  """tensor2tensor's length buckets (_bucket_boundaries): from min_length, each about 10% longer
  than the last, up to max_length."""
  boundaries, x = [], min_length
  while x < max_length:
    boundaries.append(x)
    x = max(x + 1, int(x * step))
  return boundaries + [max_length]


def bucket_batch_sizes(token_budget, boundaries, replicas=1):
  """A bucket's global batch size, tensor2tensor's: the per-replica token budget over the
  bucket's length (at least 1) on each of `replicas` replicas, so every batch splits evenly
  (t2t multiplies its per-shard sizes by the shard count the same way)."""
  return [replicas * max(1, token_budget // int(b)) for b in boundaries]


def static_lengths(batching, max_length):
  """The lengths batches are padded to: tensor2tensor's buckets up to max_length ('buckets';
  'dynamic' groups by them without padding to them) or max_length alone ('fixed', t2t's TPU
  input_fn, which pads every example to max_length)."""
  if batching not in BATCHINGS:
    raise ValueError(f'unknown batching "{batching}"; choose one of {", ".join(BATCHINGS)}.')
  return [max_length] if batching == 'fixed' else bucket_boundaries(max_length)


def _with_decoder_input(src, tgt):
  """((source, decoder input), target): the decoder input is the target shifted right behind
  PAD (tensor2tensor's start symbol)."""
  return (src, tf.pad(tgt[:, :-1], [[0, 0], [1, 0]], constant_values=PAD)), tgt


def bucketed_plan(lengths, boundaries, sizes, seed, epoch):
  """One epoch's batches for static shapes: (indices, length) where every batch of the bucket
  of that length (the first boundary >= the pair's length) has that bucket's size; a bucket's
  remainder sits the epoch out (t2t's drop_remainder); seeded order."""
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths))
  buckets = np.searchsorted(np.array(boundaries), lengths[order])
  batches = []
  for b, (length, size) in enumerate(zip(boundaries, sizes)):
    members = order[buckets == b]
    batches += [(members[i:i + size].tolist(), int(length))
                for i in range(0, len(members) - size + 1, size)]
  return [batches[i] for i in rng.permutation(len(batches))]


def _pad(rows, length):
  out = np.full((len(rows), length), PAD, np.int32)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def _ragged(rows):
  """int32 RaggedTensor of a list of 1-D sequences (tf.ragged.constant walks Python lists one
  element at a time: seconds for a corpus)."""
  lengths = np.array([len(r) for r in rows], np.int64)
  flat = np.concatenate([np.zeros(0, np.int32)] + [np.asarray(r, np.int32).reshape(-1)
                                                    for r in rows])
  return tf.RaggedTensor.from_row_lengths(flat, lengths)


def training_batches(sources, targets, token_budget, max_length, seed, start_step, end_step,
                     batching='dynamic', replicas=1):
  """tf.data stream of steps [start_step, end_step): ((source [B, S], decoder input [B, T]),
  target [B, T]) int32, the decoder input being the target shifted right behind PAD; a batch
  is global (tf.distribute splits it among the `replicas`), token_budget per replica.

  Pairs with a side longer than max_length are left out (tensor2tensor's max_length). The plan
  of the needed batches is computed up front, so the pipeline is TensorFlow ops only.
  'buckets' and 'fixed' (static shapes, for TPUs) pad every batch to its length
  (static_lengths) with that length's fixed size, a multiple of `replicas`.
  """
  static = batching != 'dynamic'
  boundaries = static_lengths(batching, max_length)
  sizes = bucket_batch_sizes(token_budget, boundaries, replicas)
  keep = [i for i in range(len(sources))
          if len(sources[i]) <= max_length and len(targets[i]) <= max_length]
  if not keep:
    raise DataError(f'no training pair fits max_length={max_length}.')
  lengths = np.array([max(len(sources[i]), len(targets[i])) for i in keep])
  plan, epoch = [], 0
  while len(plan) < end_step:
    more = (bucketed_plan(lengths, boundaries, sizes, seed, epoch) if static
            else [(b, 0) for b in batch_plan(lengths, token_budget * replicas, seed, epoch)])
    if not more:
      raise DataError(f'no length holds a full batch of {token_budget} tokens per replica '
                      f'({batching} batching, {len(keep)} pairs); lower --batch_size.')
    plan += more
    epoch += 1
  plan = plan[start_step:end_step]
  source_ids = _ragged([sources[i] for i in keep])
  target_ids = _ragged([targets[i] for i in keep])

  def gather(batch, length):
    # Static: padded to the batch's length; dynamic (length 0): each side to its longest.
    shape = tf.stack([tf.size(batch), length]) if static else None
    return _with_decoder_input(tf.gather(source_ids, batch).to_tensor(PAD, shape=shape),
                               tf.gather(target_ids, batch).to_tensor(PAD, shape=shape))

  batches = _ragged([b for b, _ in plan])
  widths = tf.constant([w for _, w in plan], tf.int32)
  return tf.data.Dataset.from_tensor_slices((batches, widths)).map(
      gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def streamed_training_batches(pairs, vocabulary, token_budget, max_length, seed, start_step,
                              end_step, batching='dynamic', replicas=1, shuffle_buffer=100_000):
  """The training stream of a corpus too large for memory (WMT14): like training_batches, from
  tf.data `pairs` of strings. Epoch e permutes each block of shuffle_buffer pairs of the prepared
  (already shuffled) order by (seed, e, block),
  tokenizes them in the pipeline, drops pairs longer than max_length and batches by length
  (static_lengths; 'dynamic' by tensor2tensor's buckets, each batch padded to its longest pair)
  with each length's batch size (bucket_batch_sizes). Resuming at step k replays the stream's
  first k batches without the model (tokenizing and batching only: minutes on a TPU host for
  WMT14) so it continues exactly."""
  boundaries = static_lengths(batching, max_length)
  sizes = bucket_batch_sizes(token_budget, boundaries, replicas)
  def shuffled(epoch):  # blocks of shuffle_buffer pairs, each permuted by (seed, epoch, block)
    def permute(block, pair):
      key = tf.stack([tf.constant(seed, tf.int64), epoch * (1 << 32) + block])
      order = tf.argsort(tf.random.stateless_uniform(tf.shape(pair[0]), key))
      return tf.gather(pair[0], order), tf.gather(pair[1], order)
    return pairs.batch(shuffle_buffer).enumerate().map(permute).unbatch()
  epochs = tf.data.Dataset.range(1 << 30).flat_map(shuffled)
  tokens = epochs.batch(256).map(
      lambda en, de: (vocabulary.encode(en), vocabulary.encode(de)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
  tokens = tokens.map(lambda src, tgt: (tf.cast(src, tf.int32), tf.cast(tgt, tf.int32))).filter(
      lambda src, tgt: tf.maximum(tf.size(src), tf.size(tgt)) <= max_length)
  batches = tokens.bucket_by_sequence_length(
      lambda src, tgt: tf.maximum(tf.size(src), tf.size(tgt)),
      bucket_boundaries=[b + 1 for b in boundaries], bucket_batch_sizes=sizes + [replicas],
      padding_values=(PAD, PAD), pad_to_bucket_boundary=batching != 'dynamic',
      drop_remainder=True)
  return batches.map(_with_decoder_input).skip(start_step).take(
      end_step - start_step).prefetch(tf.data.AUTOTUNE)


def evaluation_batches(sources, targets, batch_size=100):
  """One ordered pass of ((source, decoder input), target) batches for teacher forcing."""
  for start in range(0, len(sources), batch_size):
    src = _pad(sources[start:start + batch_size],
               max(len(s) for s in sources[start:start + batch_size]))
    tgt = _pad(targets[start:start + batch_size],
               max(len(t) for t in targets[start:start + batch_size]))
    decoder_input = np.concatenate([np.full((len(tgt), 1), PAD, np.int32), tgt[:, :-1]], 1)
    yield (src, decoder_input), tgt
