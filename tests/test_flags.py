"""Binary flags generated from the config dataclasses: one flag per field, typed, documented
and enumerated from the registries, and read back into the recipe."""
import dataclasses

from absl import flags
import pytest

from data import preprocessing, sources
from experiments import common
import models
from models import recipes


@pytest.mark.parametrize('config_type', [recipes.TrainConfig, recipes.TranslationConfig])
def test_every_config_field_is_documented(config_type):
  undocumented = [f.name for f in dataclasses.fields(config_type) if not f.metadata.get('help')]
  assert not undocumented


def test_translation_flags_set_the_recipe_fields():
  flag_values = flags.FlagValues()
  common.define_config_flags(recipes.TranslationConfig, recipes.TRANSLATION_RECIPES,
                             exclude=('label_smoothing',), flag_values=flag_values,
                             model='transformer_small', seed=0)
  fields = {f.name for f in dataclasses.fields(recipes.TranslationConfig)}
  assert set(flag_values) == fields - {'label_smoothing'}
  assert flag_values['dataset'].parser.enum_values == ['multi30k', 'wmt14']
  flag_values(['prog', '--d_model=64', '--num_heads=2', '--dataset=wmt14', '--adam_beta2=0.98'])
  config = recipes.recipe(flag_values.model, **common.config_overrides(
      recipes.TranslationConfig, flag_values=flag_values, label_smoothing=0.1, seed=3))
  assert (config.d_model, config.num_heads, config.dataset, config.adam_beta2) == (
      64, 2, 'wmt14', 0.98)
  assert (config.label_smoothing, config.seed) == (0.1, 3)
  assert (config.encoder_layers, config.ffn, config.train_steps) == (3, 1024, 2000)  # recipe's


def test_image_flags_types_enums_and_recipe_defaults():
  flag_values = flags.FlagValues()
  common.define_config_flags(recipes.TrainConfig, recipes.RECIPES, flag_values=flag_values,
                             exclude=('teacher_dir',), model='resnet56', seed=0)
  assert flag_values['dataset'].parser.enum_values == list(sources.DATASETS)
  assert flag_values['preprocessing'].parser.enum_values == [
      *preprocessing.CHAINS, *preprocessing.PER_EXAMPLE_CHAINS]
  assert flag_values['model'].parser.enum_values == list(recipes.RECIPES)
  assert list(recipes.RECIPES) == list(models.BUILDERS)  # every recipe has a builder, and back
  assert 'recipe default' in flag_values['batch_size'].help
  assert 'recipe default' not in flag_values['seed'].help
  flag_values(['prog', '--lr_boundaries=0.25,0.5', '--nonesterov', '--dataset=cifar10'])
  overrides = common.config_overrides(recipes.TrainConfig, flag_values=flag_values)
  config = recipes.recipe(flag_values.model, **overrides)
  assert config.lr_boundaries == (0.25, 0.5) and config.nesterov is False
  assert (config.dataset, config.batch_size, config.weight_decay) == ('cifar10', 128, 1e-4)
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values['dataset'].parse('imagenet')
  with pytest.raises(flags.IllegalFlagValueError, match='fractions|numbers in'):
    flag_values(['prog', '--lr_boundaries=0.5,1.5'])
