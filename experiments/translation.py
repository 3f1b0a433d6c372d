r"""Paper Section 3 on translation (Table 3 row, Figures 3 and 4): a Transformer EN->DE trained
with hard targets and with label smoothing; next-token BLEU, ECE and NLL against temperature.

  python -m experiments.translation --output_dir=results/translation_multi30k
Trains alpha = 0 and 0.1 with the recipe (default transformer_small on the bundled Multi30k; the
paper's transformer_base on WMT14 with --model=transformer_base) or reuses --run_dirs, then
evaluates each run once (translation_eval.json and hypotheses/ in its run directory): token
accuracy, NLL and ECE on the validation set at every temperature and the NLL-fitted one, BLEU of
beam-search translations of the validation set at each --bleu_temperatures and of the test set
at T = 1 (and the fitted T of the hard-target model). With --num_seeds, every alpha is trained
with each seed and the paper's claims are checked across the seeds with paired t-tests.
"""
import os

from absl import flags

from experiments import common, report, translation_section
from models import recipes, translation_eval, translation_training

common.define_section_flags('Where the runs, tables and figures go.',
                            'Reuse finished translation runs instead of training.',
                            alphas=['0', '0.1'], alphas_help='Label smoothing of the runs.')
common.define_num_seeds(1, 'every alpha is trained with each, and each claim is checked '
                        'across them with a paired test.')
common.define_number_list('scaling_temperatures',
                          [str(t) for t in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5,
                                            1.6, 1.7, 1.8, 1.9, 2.0)],
                          'Temperatures of the token-metric sweep (temperature scaling).',
                          lower=1e-3)
common.define_number_list('bleu_temperatures', None, 'Temperatures at which the validation set '
                          'is beam-decoded for BLEU (default: --scaling_temperatures).',
                          lower=1e-3)
flags.DEFINE_integer('beam_size', 4, 'Beam size (tensor2tensor default; the paper: unstated).',
                     lower_bound=1)
flags.DEFINE_float('length_penalty', 0.6, 'alpha of ((5 + length) / 6)^alpha (tensor2tensor).',
                   lower_bound=0.0)
flags.DEFINE_enum('eos_rule', 't2t', ['t2t', 'fairseq'], 'Which end-of-sentence candidates of '
                  'a beam-search step finish a hypothesis: t2t, any of the 2 x beam ranked '
                  '(tensor2tensor\'s, the paper\'s decoder); fairseq, only those within the '
                  'first beam.')
flags.DEFINE_integer('max_eval_sentences', None, 'Evaluate on the first N sentences of each '
                     'split only (smoke runs).', lower_bound=1)
common.define_data_flags()
common.define_runtime_flags()
common.define_config_flags(recipes.TranslationConfig, recipes.TRANSLATION_RECIPES,
                           exclude=('label_smoothing',), model='transformer_small',
                           label_smoothing_convention='t2t', seed=0)
FLAGS = flags.FLAGS
FLAGS.set_default('checkpoint_every', 200)  # translation steps take seconds on a CPU


def main(argv):
  del argv
  settings = translation_eval.EvalSettings(
      temperatures=[float(t) for t in FLAGS.scaling_temperatures],
      bleu_temperatures=[float(t) for t in FLAGS.bleu_temperatures or FLAGS.scaling_temperatures],
      beam_size=FLAGS.beam_size, length_penalty=FLAGS.length_penalty,
      max_sentences=FLAGS.max_eval_sentences, eos_rule=FLAGS.eos_rule)
  data_dir = common.data_dir_for_reused_runs()
  run_dirs = FLAGS.run_dirs
  if not run_dirs:
    run_dirs, options = [], common.run_options()
    for seed, alpha in [(s, float(a)) for s in common.seeds() for a in FLAGS.alphas]:
      config = recipes.recipe(FLAGS.model, **common.config_overrides(
          recipes.TranslationConfig, label_smoothing=alpha, seed=seed))
      run_dir = os.path.join(FLAGS.output_dir, f'alpha_{alpha:g}_seed_{seed}')
      # Evaluated as soon as trained (inside the run): its translation_eval.json and
      # hypotheses/ are small enough to keep, its weights are not, so a sweep spread over
      # sessions loses no run.
      translation_training.train_translation(config, run_dir, data_dir=FLAGS.data_dir,
                                             options=options, evaluation=settings)
      run_dirs.append(run_dir)
  translation_section.evaluate_and_write(run_dirs, FLAGS.output_dir, settings, data_dir)
  print(report.write_section_markdown(FLAGS.output_dir, 'translation'))


if __name__ == '__main__':
  common.run(main)
