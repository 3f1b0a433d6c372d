"""Reference TensorFlow/Keras reproduction of "When Does Label Smoothing Help?" (NeurIPS 2019).

TensorFlow comes as one build per machine, so it is an extra rather than a requirement:
  pip install -e '.[cpu]'  (or '.[test]'): tensorflow 2.21 (CPUs; GPUs with CUDA installed);
  pip install -e '.[tpu]' && pip install --no-deps tensorflow-text==2.20.1: a Cloud TPU VM.
tensorflow-tpu is its own build of the `tensorflow` package (PyPI's newest: 2.20.0, none for
2.21). tensorflow-text 2.20 is built against TensorFlow 2.20 but requires the `tensorflow`
distribution, whose files would overwrite tensorflow-tpu's, hence --no-deps after it.
"""
import setuptools

CPU = ['tensorflow~=2.21.0', 'tensorflow-text~=2.21.0']
# tensorflow-tpu 2.20.0 asks for libtpu~=0.0.14, but libtpu 0.0.52 (pip's pick on Python 3.11+)
# lacks TensorFlow's TPU entry points and aborts `import tensorflow`; 0.0.14 imports.
TPU = ['tensorflow-tpu==2.20.0', 'libtpu==0.0.14']

setuptools.setup(
    name='label-smoothing-reproduction',
    version='0.1.0',
    description='Every section of Mueller, Kornblith & Hinton (2019), one binary per section.',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=[
        'models', 'data', 'experiments', 'calibration', 'distillation', 'visualization']),
    install_requires=[
        'keras>=3.10,<4',
        'tensorflow-datasets>=4.9',
        'tensorboard>=2.20',
        'numpy>=1.26',
        'scipy>=1.11',
        'matplotlib>=3.8',
        'absl-py>=2.0',
        'importlib_resources',  # needed by tensorflow-datasets 4.9 but not declared by it
        'sentencepiece>=0.2,<0.3',  # the translation vocabulary (trained; applied by tf-text)
        'sacrebleu>=2.4,<3',  # BLEU
    ],
    # 'test' brings the CPU build, so that '.[test]' alone is a working checkout.
    extras_require={'cpu': CPU, 'tpu': TPU, 'test': ['pytest>=8', 'pytest-xdist>=3.5,<4'] + CPU},
)
