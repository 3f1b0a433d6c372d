"""Reference TensorFlow/Keras reproduction of "When Does Label Smoothing Help?" (NeurIPS 2019)."""
import setuptools

setuptools.setup(
    name='label-smoothing-reproduction',
    version='0.1.0',
    description='Every section of Mueller, Kornblith & Hinton (2019), one binary per section.',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=[
        'models', 'data', 'experiments', 'calibration', 'distillation', 'visualization']),
    install_requires=[
        'tensorflow~=2.21.0',
        'keras>=3.10,<4',
        'tensorflow-datasets>=4.9',
        'tensorflow-text~=2.21.0',
        'tensorboard>=2.20',
        'numpy>=1.26',
        'scipy>=1.11',
        'matplotlib>=3.8',
        'absl-py>=2.0',
        'importlib_resources',  # needed by tensorflow-datasets 4.9 but not declared by it
        'sentencepiece>=0.2,<0.3',  # the translation vocabulary (trained; applied by tf-text)
        'sacrebleu>=2.4,<3',  # BLEU
    ],
    extras_require={'test': ['pytest>=8']},
)
