"""How far the JPEG stand-in's pixels are from the official CIFAR-10 ones, for a ResNet-56.

A ResNet-56 trained on the official 50,000 training images (akamaster/pytorch_resnet_cifar10,
pretrained_models/resnet56-4bfd9763.th: He et al.'s v1 network, option-A shortcuts) is evaluated
on the stand-in's test images and on its last training batch (data_batch_5, our validation
split, which that network trained on). A measurement tool, not part of the project's packages:
it needs a CPU torch (the peer-bench's venv has one), not TensorFlow.

  python measure.py resnet56-4bfd9763.th /work/data/cifar10_jpeg/cifar-10-batches-bin
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)  # its trainer.py's transforms.Normalize
STD = (0.229, 0.224, 0.225)


def read_batch(path):
  """(images N x 3 x 32 x 32 uint8, labels) of a CIFAR-10 binary batch."""
  raw = np.fromfile(path, np.uint8).reshape(-1, 3073)
  return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def logits(weights, images):
  """The v1 ResNet-56 of the state dict, evaluation mode, written out from its layer names."""
  w = {k.removeprefix('module.'): v for k, v in weights.items()}

  def conv_bn(name, x, stride=1):
    x = F.conv2d(x, w[f'{name.replace("bn", "conv")}.weight'], stride=stride, padding=1)
    return F.batch_norm(x, w[f'{name}.running_mean'], w[f'{name}.running_var'],
                        w[f'{name}.weight'], w[f'{name}.bias'], False, 0.0, 1e-5)

  mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
  x = (torch.from_numpy(images).float() / 255.0 - mean) / std
  x = F.relu(conv_bn('bn1', x))
  for stage, planes in enumerate((16, 32, 64), 1):
    for block in range(9):
      name, stride = f'layer{stage}.{block}', 2 if stage > 1 and block == 0 else 1
      out = F.relu(conv_bn(f'{name}.bn1', x, stride))
      out = conv_bn(f'{name}.bn2', out)
      if stride == 2:  # option A: subsample, zero channels on both sides
        x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))
      x = F.relu(out + x)
  return F.linear(x.mean((2, 3)), w['linear.weight'], w['linear.bias'])


def main(weights_path, batches_dir):
  torch.set_num_threads(2)
  saved = torch.load(weights_path, map_location='cpu', weights_only=False)
  with open(weights_path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  result = {'weights': os.path.basename(weights_path), 'sha256': digest,
            'recorded_best_prec1': saved.get('best_prec1')}
  for split, filename in (('test', 'test_batch.bin'), ('data_batch_5', 'data_batch_5.bin')):
    images, labels = read_batch(os.path.join(batches_dir, filename))
    with torch.no_grad():
      predicted = torch.cat([logits(saved['state_dict'], images[i:i + 500]).argmax(1)
                             for i in range(0, len(labels), 500)]).numpy()
    accuracy = float(np.mean(predicted == labels))
    half_width = 1.96 * float(np.sqrt(accuracy * (1 - accuracy) / len(labels)))
    result[split] = {'accuracy': accuracy, 'binomial_95': half_width,
                     'num_examples': int(len(labels))}
  print(json.dumps(result, indent=1))


if __name__ == '__main__':
  main(*sys.argv[1:])
