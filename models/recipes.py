"""The paper's training recipes (Appendix A) as one config type; every field can be overridden.

Learning-rate boundaries are fractions of the schedule so a shortened run (`train_steps`)
keeps the recipe's shape.
"""
import dataclasses
import math
from typing import Optional, Tuple

from data import preprocessing, sources
from models.inception_v4 import AUX_HEAD_MIN_INPUT, MIN_INPUT as INCEPTION_MIN_INPUT


@dataclasses.dataclass
class TrainConfig:
  model: str
  dataset: str
  label_smoothing: float = 0.0
  label_smoothing_convention: str = 'uniform'
  seed: int = 0
  batch_size: int = 128
  train_steps: Optional[int] = None   # if None: train_epochs over the train split
  train_epochs: Optional[float] = None
  learning_rate: float = 0.1
  lr_schedule: str = 'piecewise'      # piecewise | linear (to zero) | constant
  lr_boundaries: Tuple[float, ...] = ()  # fractions of train_steps
  lr_decay_factor: float = 0.1
  lr_warmup_fraction: float = 0.0     # linear warm-up from 0 over this fraction of the steps
  momentum: float = 0.0
  dampening: float = 0.0
  nesterov: bool = False
  last_layer_lr_multiplier: float = 1.0
  loss_multiplier: float = 1.0
  weight_decay: float = 0.0
  clip_norm: float = 0.0              # global-norm clipping; 0 = off
  ema_decay: float = 0.0              # evaluate TF-slim's moving average of the weights
  select_by_validation: bool = False  # keep the checkpoint with the best validation accuracy
  preprocessing: str = 'mnist'
  image_size: Optional[int] = None    # per-example chains: view side (None: the chain's own)
  width: int = 1200                   # fc only
  dropout: float = 0.0                # fc only
  width_multiplier: float = 1.0       # inception_v4 only: filters scaled (1: the paper's)
  resnet_blocks: int = 9              # resnet56 only: basic blocks per stage (9: ResNet-56)
  aux_loss_weight: float = 0.0        # inception_v4 only: auxiliary head's loss weight (0: none)
  # fc only: Gaussian init variance. The paper writes "variance 0.03"; read literally (std 0.17,
  # initial logits ~30) the 2x1200 recipe reaches only 97.8-98.4% here, read as standard deviation
  # 0.03 it reaches 99.2-99.3%, the accuracy of the paper's Table 4 and of the replication. The
  # default is the reading that reproduces the paper; --init_variance=0.03 is the literal one.
  init_variance: float = 0.0009
  validation_size: Optional[int] = None  # None: the dataset's documented hold-out
  # Keras dtype policy: float32, or mixed_bfloat16 as on TPUs (losses, softmax statistics,
  # optimizer variables, LRN and evaluation stay float32).
  dtype_policy: str = 'float32'
  # Distillation (a student when teacher_dir is set): soft = (1 - beta) CE + beta H(p_t(T),
  # p_s(T_s)); logits = (1 - beta) CE + beta 0.5 ||z_s - z_t||^2 (the MNIST variant).
  teacher_dir: Optional[str] = None
  distillation: str = 'soft'
  distill_beta: float = 1.0
  distill_temperature: float = 1.0
  student_temperature: float = 1.0
  # Teacher outputs: 'on_the_fly' (the teacher sees the student's own augmented example),
  # 'cached' (one pass over clean training images; exact for un-augmented students, faster),
  # None: cached when the student's training chain is deterministic, else on the fly.
  teacher_outputs: Optional[str] = None


DTYPE_POLICIES = ('float32', 'mixed_bfloat16')
TEACHER_OUTPUTS = (None, 'on_the_fly', 'cached')
LR_SCHEDULES = ('piecewise', 'linear', 'constant')
LABEL_SMOOTHING_CONVENTIONS = ('uniform', 't2t')

# What each field means: the binaries' flags are generated from the config types with these
# texts (experiments.common.define_config_flags), so a field is documented once, here.
TrainConfig.HELP = {
    'model': 'Architecture.',
    'dataset': 'Dataset.',
    'label_smoothing': 'alpha in [0, 1).',
    'label_smoothing_convention': 'uniform: y(1-a) + a/K (paper); t2t: 1-a on the true class, '
                                  'a/(K-1) elsewhere.',
    'seed': 'Seed for initialization, data order and augmentation.',
    'batch_size': 'Global batch size.',
    'train_steps': 'Training steps.',
    'train_epochs': 'Training epochs over the train split; used when --train_steps is unset.',
    'learning_rate': 'Base learning rate.',
    'lr_schedule': 'Learning-rate schedule (linear: to zero).',
    'lr_boundaries': 'Piecewise boundaries as fractions of train_steps.',
    'lr_decay_factor': 'Piecewise decay factor.',
    'lr_warmup_fraction': 'Linear learning-rate warm-up from 0 over this fraction of the steps.',
    'momentum': 'Momentum (0: plain SGD).',
    'dampening': 'Momentum dampening (0.9: the MNIST gradient smoothing).',
    'nesterov': 'Nesterov momentum.',
    'last_layer_lr_multiplier': 'LR multiplier of the logits layer.',
    'loss_multiplier': 'Cross-entropy multiplier (paper: 3 for CIFAR).',
    'weight_decay': 'L2 coefficient wd in 0.5 * wd * ||w||^2.',
    'clip_norm': 'Global-norm gradient clipping (0: off).',
    'select_by_validation': 'Keep (save and evaluate) the weights of the checkpoint with the '
                            'best validation accuracy, not the last (the paper\'s Inception-v4).',
    'ema_decay': 'Decay of TF-slim\'s moving average of all model variables, batch-norm '
                 'statistics included, at step n min(decay, (1 + n) / (10 + n)); it is scored, '
                 'saved and evaluated in place of the weights (0: off; Inception-v4: 0.9999).',
    'preprocessing': 'Augmentation chain.',
    'image_size': 'Side of the square views of a per-example chain (streamed datasets; default: '
                  'the chain\'s own, 299 for inception).',
    'width': 'fc hidden width (1200 teacher, 800 student).',
    'dropout': 'fc dropout rate.',
    'width_multiplier': 'inception_v4 filters scaled by this (1: the paper\'s network).',
    'resnet_blocks': 'resnet56 basic blocks per stage, depth 6n + 2 (9: ResNet-56, the paper\'s; '
                     'fewer only to exercise the plumbing quickly, as the tests do).',
    'aux_loss_weight': 'inception_v4 auxiliary head (from Mixed_6h) and its loss weight, label '
                       'smoothing applied as to the main loss (recipe 0.4, as slim and the TPU '
                       'reference; 0: no head, needed for views under 107 px).',
    'init_variance': 'fc Gaussian init variance (default 0.0009, i.e. std 0.03: the reading '
                     'that reproduces the paper; 0.03 is the literal reading of its text, see '
                     'models/recipes.py).',
    'validation_size': 'Examples held out of the official training set as validation '
                       '(default: 10000 CIFAR, 5000 MNIST-family).',
    'dtype_policy': 'Keras dtype policy (default float32; mixed_bfloat16 as on TPUs: losses, '
                    'softmax, optimizer variables, LRN and evaluation stay float32).',
    'teacher_dir': 'Run directory of the teacher (makes the run a student).',
    'distillation': 'soft: cross-entropy to the teacher\'s tempered outputs; logits: squared '
                    'logit difference (the MNIST variant).',
    'distill_beta': 'Weight of the teacher term.',
    'distill_temperature': 'Temperature of the teacher\'s outputs.',
    'student_temperature': 'Temperature of the student\'s outputs in the teacher term.',
    'teacher_outputs': 'on_the_fly: the teacher sees the student\'s augmented example; '
                       'cached: one pass over clean training images.',
}

RECIPES = {
    # Hinton et al.'s MNIST network as the paper describes it.
    'fc': dict(dataset='mnist', batch_size=512, train_epochs=100, learning_rate=1.0,
               lr_schedule='linear', momentum=0.9, dampening=0.9, last_layer_lr_multiplier=0.1,
               preprocessing='mnist_shift'),
    # TF CIFAR-10 tutorial network: plain SGD, x0.1 every 130k of 390k steps.
    'alexnet': dict(dataset='cifar10', batch_size=128, train_steps=390_000, learning_rate=0.1,
                    lr_boundaries=(1 / 3, 2 / 3), loss_multiplier=3.0, weight_decay=0.04,
                    preprocessing='alexnet_cifar'),
    # tensor2tensor ResNet-56: Nesterov, x0.1 at 32k and 48k of 64k steps, clipping 1.0.
    'resnet56': dict(dataset='cifar100', batch_size=128, train_steps=64_000, learning_rate=0.1,
                     lr_boundaries=(0.5, 0.75), momentum=0.9, nesterov=True, loss_multiplier=3.0,
                     weight_decay=1e-4, clip_norm=1.0, preprocessing='resnet_cifar'),
    # The paper (Appendix A.4): batch 4096, Nesterov 0.9, weight decay 8e-5, EMA 0.9999. Its
    # schedule is unstated; this is Model Garden's ImageNet SGD reading for that batch (linear
    # scaling 0.1 x 4096 / 256, 5 warm-up epochs, x0.1 at epochs 30, 60 and 80 of 90). The
    # auxiliary head trains with weight 0.4, smoothed like the main loss: slim's inception_v4
    # builds it by default (create_aux_logits=True, nets/inception_v4.py), train_image_classifier.py
    # adds its loss with weights=0.4 and the same label_smoothing, and the TPU reference
    # (models/experimental/inception/inception_v4.py) does the same. It is training-only:
    # predictions and the paper's 42,679,816 parameters are the main output's.
    'inception_v4': dict(dataset='imagenet2012', batch_size=4096, train_epochs=90,
                         learning_rate=1.6, lr_boundaries=(30 / 90, 60 / 90, 80 / 90),
                         lr_warmup_fraction=5 / 90, momentum=0.9, nesterov=True,
                         weight_decay=8e-5, ema_decay=0.9999, select_by_validation=True,
                         preprocessing='inception', aux_loss_weight=0.4),
}

def recipe(model, **overrides):
  """The paper recipe for `model`, with `overrides` (None values ignored) applied."""
  if model not in RECIPES:
    raise ValueError(f'unknown model "{model}"; choose one of {", ".join(sorted(RECIPES))}.')
  fields = dict(RECIPES[model], model=model)
  fields.update({k: v for k, v in overrides.items() if v is not None})
  if overrides.get('train_epochs') is not None and overrides.get('train_steps') is None:
    fields['train_steps'] = None  # epochs given explicitly win over the recipe's steps
  dataset = sources.DATASETS.get(fields['dataset'])
  if (dataset and not dataset.streamed and overrides.get('preprocessing') is None and
      fields['preprocessing'] in preprocessing.CHAINS and
      not preprocessing.takes(fields['preprocessing'], dataset.image_shape)):
    fields['preprocessing'] = dataset.preprocessing  # e.g. resnet56 on MNIST: MNIST's chain
  config = TrainConfig(**fields)
  config.lr_boundaries = tuple(float(b) for b in config.lr_boundaries)
  validate(config)
  return config


def choices(config_type):
  """The allowed values of a config type's enumerated fields, from their registries."""
  if config_type is TranslationConfig:
    return {'model': tuple(TRANSLATION_RECIPES), 'dataset': ('multi30k', 'wmt14'),
            'label_smoothing_convention': LABEL_SMOOTHING_CONVENTIONS,
            'dtype_policy': DTYPE_POLICIES, 'batching': TRANSLATION_BATCHINGS}
  return {'model': tuple(RECIPES), 'dataset': tuple(sources.DATASETS),
          'label_smoothing_convention': LABEL_SMOOTHING_CONVENTIONS,
          'lr_schedule': LR_SCHEDULES,
          'preprocessing': tuple(preprocessing.CHAINS) + tuple(preprocessing.PER_EXAMPLE_CHAINS),
          'dtype_policy': DTYPE_POLICIES, 'distillation': ('soft', 'logits'),
          'teacher_outputs': TEACHER_OUTPUTS[1:]}


def _view_size(config):
  """The side of the views the model sees (None: an unknown chain, refused by its own check)."""
  shape = preprocessing.OUTPUT_SHAPES.get(config.preprocessing)
  return config.image_size or (shape[0] if shape else None)


def _shape(shape):
  return ' x '.join('any' if d is None else str(d) for d in shape)


def validate(config):
  view, dataset = _view_size(config), sources.DATASETS.get(config.dataset)
  checks = [
      (dataset is not None, f'unknown dataset "{config.dataset}"; choose one of '
       f'{", ".join(sorted(sources.DATASETS))}'),
      (0.0 <= config.label_smoothing < 1.0, f'label_smoothing must be in [0, 1), got '
       f'{config.label_smoothing}'),
      (config.batch_size > 0, 'batch_size must be positive'),
      (config.train_steps is not None or config.train_epochs is not None,
       'set train_steps or train_epochs'),
      (config.learning_rate > 0, 'learning_rate must be positive'),
      (config.lr_schedule in LR_SCHEDULES,
       f'lr_schedule must be piecewise, linear or constant, got {config.lr_schedule}'),
      (all(0 < b < 1 for b in config.lr_boundaries), 'lr_boundaries are fractions in (0, 1)'),
      (0 <= config.dropout < 1, 'dropout must be in [0, 1)'),
      (0 <= config.lr_warmup_fraction < 1, 'lr_warmup_fraction must be in [0, 1)'),
      (0 <= config.ema_decay < 1, 'ema_decay must be in [0, 1)'),
      (not config.select_by_validation or config.validation_size != 0,
       'select_by_validation needs a validation split (validation_size > 0)'),
      (config.width_multiplier > 0, 'width_multiplier must be positive'),
      (config.image_size is None or (config.image_size > 0 and config.preprocessing in
                                     preprocessing.PER_EXAMPLE_CHAINS),
       'image_size is for per-example chains (inception) and must be positive'),
      (config.aux_loss_weight >= 0, 'aux_loss_weight must be >= 0'),
      (config.resnet_blocks >= 1, 'resnet_blocks must be at least 1'),
      (config.model == 'resnet56' or config.resnet_blocks == 9,
       'resnet_blocks is a resnet56 setting'),
      (config.model == 'inception_v4' or (config.aux_loss_weight == 0 and
                                          config.width_multiplier == 1),
       'aux_loss_weight and width_multiplier are inception_v4 settings'),
      (not has_aux_head(config) or view is None or view >= AUX_HEAD_MIN_INPUT,
       f'the auxiliary head needs views of at least {AUX_HEAD_MIN_INPUT} px '
       f'(image_size {config.image_size}); set aux_loss_weight=0 for smaller ones'),
      (dataset is None or dataset.streamed ==
       (config.preprocessing in preprocessing.PER_EXAMPLE_CHAINS),
       f'preprocessing "{config.preprocessing}" does not fit dataset "{config.dataset}": '
       'streamed datasets (imagenet2012) take a per-example chain (inception), the others a '
       'batched one'),
      (dataset is None or config.preprocessing not in preprocessing.INPUT_SHAPES or
       preprocessing.takes(config.preprocessing, dataset.image_shape),
       f'preprocessing "{config.preprocessing}" takes '
       f'{_shape(preprocessing.INPUT_SHAPES.get(config.preprocessing, ()))} images, dataset '
       f'"{config.dataset}" has {_shape(dataset.image_shape if dataset else ())}; leave '
       'preprocessing unset to use the dataset\'s own'),
      (config.model != 'inception_v4' or view is None or view >= INCEPTION_MIN_INPUT,
       f'inception_v4 needs views of at least {INCEPTION_MIN_INPUT} px; {config.dataset} '
       f'with preprocessing {config.preprocessing} gives {view}'),
      (config.init_variance > 0, 'init_variance must be positive'),
      (config.label_smoothing_convention in LABEL_SMOOTHING_CONVENTIONS,
       'label_smoothing_convention must be uniform or t2t'),
      (config.distillation in ('soft', 'logits'), 'distillation must be soft or logits'),
      (0 <= config.distill_beta <= 1, 'distill_beta must be in [0, 1]'),
      (config.distill_temperature > 0 and config.student_temperature > 0,
       'distillation temperatures must be positive'),
      (config.dtype_policy in DTYPE_POLICIES,
       f'dtype_policy must be one of {", ".join(DTYPE_POLICIES)}, got {config.dtype_policy}'),
      (config.teacher_outputs in TEACHER_OUTPUTS,
       f'teacher_outputs must be on_the_fly or cached, got {config.teacher_outputs}'),
  ]
  for ok, message in checks:
    if not ok:
      raise ValueError(message + '.')


def has_aux_head(config):
  """Whether the network has an auxiliary head (Inception-v4) whose loss is trained too."""
  return config.aux_loss_weight > 0


def learning_rate_drops(config, steps):
  """The steps where a piecewise schedule of `steps` in all drops the learning rate."""
  if config.lr_schedule != 'piecewise':
    return []
  return [int(round(b * steps)) for b in config.lr_boundaries]


def total_steps(config, num_train_examples):
  if config.train_steps is not None:
    return int(config.train_steps)
  return int(math.ceil(config.train_epochs * (num_train_examples // config.batch_size)))


@dataclasses.dataclass
class TranslationConfig:
  """A Transformer translation run (paper Section 3); batch_size counts tokens per replica."""
  BATCH_UNIT = 'budget tokens per replica'  # the unit of progress reports' batch_size per second
  model: str
  dataset: str = 'multi30k'
  label_smoothing: float = 0.0
  label_smoothing_convention: str = 't2t'   # the paper's Transformer: 1 - a, a / (V - 1)
  seed: int = 0
  batch_size: int = 4096                     # tokens per replica (per side, padding included)
  max_length: int = 256
  batching: str = 'auto'                     # TRANSLATION_BATCHINGS
  fixed_length: Optional[int] = None         # batching='fixed': None is max_length
  train_steps: int = 300_000
  vocab_size: int = 32_000
  encoder_layers: int = 6
  decoder_layers: int = 6
  d_model: int = 512
  num_heads: int = 8
  ffn: int = 2048
  dropout: float = 0.1                       # residuals and embedded inputs
  attention_dropout: float = 0.1
  relu_dropout: float = 0.1
  warmup_steps: int = 8000
  learning_rate_constant: float = 2.0
  adam_beta1: float = 0.9
  adam_beta2: float = 0.997
  adam_epsilon: float = 1e-9
  dtype_policy: str = 'float32'


TranslationConfig.HELP = {
    'model': 'Translation recipe.',
    'dataset': 'Parallel corpus.',
    'label_smoothing': 'alpha in [0, 1).',
    'label_smoothing_convention': 't2t: 1 - a on the true token, a / (V - 1) elsewhere (the '
                                  'paper\'s Transformer); uniform: y(1-a) + a/V.',
    'seed': 'Seed of initialization, dropout and batch order.',
    'batch_size': 'Token budget per replica (tensor2tensor\'s per-shard batch_size): a batch '
                  'holds at most this many tokens per side on each replica, padding included, '
                  'so a step takes batch_size x replicas (4,096 x 8 on an 8-core TPU).',
    'max_length': 'Longest sentence in subword tokens; longer training pairs are dropped.',
    'batching': 'How training pairs are batched. dynamic: each batch padded to its longest pair '
                '(shapes vary; CPUs, GPUs). buckets: tensor2tensor\'s length buckets (8 to '
                'max_length, about 10% apart), each batch padded to its bucket with a fixed size '
                'per bucket (static shapes, one compiled step per bucket). fixed: tensor2tensor\'s '
                'TPU input (data_reader.input_fn): every pair padded to --fixed_length, longer '
                'ones dropped, batch_size // fixed_length pairs per replica (one shape). auto: '
                'buckets under --strategy=tpu, dynamic elsewhere.',
    'fixed_length': 'The one length of --batching=fixed (default: max_length, as tensor2tensor '
                    'pads to its max_length: 256 in transformer_base, 64 in transformer_tpu).',
    'train_steps': 'Training steps.',
    'vocab_size': 'Subword vocabulary size.',
    'encoder_layers': 'Encoder layers.',
    'decoder_layers': 'Decoder layers.',
    'd_model': 'Model width.',
    'num_heads': 'Attention heads.',
    'ffn': 'Feed-forward width.',
    'dropout': 'Dropout of residuals and embedded inputs.',
    'attention_dropout': 'Dropout of attention weights.',
    'relu_dropout': 'Dropout after the feed-forward ReLU.',
    'warmup_steps': 'Learning-rate warm-up steps.',
    'learning_rate_constant': 'The constant of tensor2tensor\'s schedule.',
    'adam_beta1': 'Adam beta1.',
    'adam_beta2': 'Adam beta2.',
    'adam_epsilon': 'Adam epsilon.',
    'dtype_policy': 'Keras dtype policy.',
}

TRANSLATION_BATCHINGS = ('auto', 'dynamic', 'buckets', 'fixed')

TRANSLATION_RECIPES = {
    # tensor2tensor transformer_base on translate_ende_wmt32k (the paper's).
    'transformer_base': dict(dataset='wmt14', vocab_size=32_000),
    # Small enough for Multi30k on 2 CPU cores: 3+3 layers, d_model 256, ffn 1024, 4 heads, an
    # 8k vocabulary, 4,096-token batches; 2,000 steps (about 17 epochs) at the measured 1.66 s a
    # step on 2 idle cores is 55 minutes; warm-up 1,000 steps (peak lr 2 / sqrt(1000 * 256) =
    # 0.004), the schedule's constant 2 unchanged. Not yet validated by a full run.
    'transformer_small': dict(dataset='multi30k', vocab_size=8000, encoder_layers=3,
                              decoder_layers=3, d_model=256, num_heads=4, ffn=1024,
                              train_steps=2000, warmup_steps=1000),
}


def translation_recipe(model, **overrides):
  """The translation recipe for `model` with `overrides` (None values ignored) applied."""
  if model not in TRANSLATION_RECIPES:
    raise ValueError(f'unknown translation model "{model}"; choose one of '
                     f'{", ".join(sorted(TRANSLATION_RECIPES))}.')
  fields = dict(TRANSLATION_RECIPES[model], model=model)
  fields.update({k: v for k, v in overrides.items() if v is not None})
  config = TranslationConfig(**fields)
  checks = [
      (config.dataset in ('multi30k', 'wmt14'), f'unknown translation dataset '
       f'"{config.dataset}"; choose multi30k or wmt14'),
      (0.0 <= config.label_smoothing < 1.0, 'label_smoothing must be in [0, 1)'),
      (config.label_smoothing_convention in LABEL_SMOOTHING_CONVENTIONS,
       'label_smoothing_convention must be uniform or t2t'),
      (config.d_model % config.num_heads == 0, 'd_model must be a multiple of num_heads'),
      (config.batch_size >= config.max_length, 'the token budget (batch_size) must hold one '
       'sequence of max_length tokens'),
      (config.batching in TRANSLATION_BATCHINGS,
       f'batching must be one of {", ".join(TRANSLATION_BATCHINGS)}'),
      (config.fixed_length is None or (config.batching == 'fixed' and
                                       0 < config.fixed_length <= config.max_length),
       'fixed_length is a --batching=fixed setting, from 1 to max_length'),
      (min(config.train_steps, config.warmup_steps, config.vocab_size) > 0,
       'train_steps, warmup_steps and vocab_size must be positive'),
      (config.dtype_policy in DTYPE_POLICIES, f'dtype_policy must be one of {DTYPE_POLICIES}'),
  ]
  for ok, message in checks:
    if not ok:
      raise ValueError(message + '.')
  return config
