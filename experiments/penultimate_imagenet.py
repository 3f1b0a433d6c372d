r"""Paper Figure 1's ImageNet rows for inception_v4: penultimate activations of classes 0, 299,
499 (tench, meerkat, cleaver), projected onto the plane of their templates, without and with
label smoothing; the paper's second row (semantically similar classes) is
`--classes=265,266,0 --class_names=toy_poodle,miniature_poodle,tench`.

  python -m experiments.penultimate_imagenet --data_dir=gs://.../tensorflow_datasets \
      --output_dir=gs://.../penultimate_imagenet --run_dirs=DIR_ALPHA0,DIR_ALPHA0.1
Reuses finished Inception-v4 runs (experiments.accuracy_table on imagenet2012), or trains
alpha = 0 and 0.1 with the paper recipe (accelerators only). Needs a prepared tfds imagenet2012.
"""
from experiments import penultimate_common

if __name__ == '__main__':
  penultimate_common.run('inception_v4', 'imagenet2012', [0, 299, 499],
                         'tench,meerkat,cleaver'.split(','))
