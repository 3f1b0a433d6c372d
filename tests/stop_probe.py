"""Run as a binary (experiments.common.run) that gets SIGTERM or Ctrl-C outside training:
`python -m tests.stop_probe sigterm|sigint`. Ctrl-C raises KeyboardInterrupt as it does in a
command started from a terminal (in a test it may come with SIGINT ignored)."""
import os
import signal

from experiments import common


def main(argv):
  signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, see above
  os.kill(os.getpid(), signal.SIGTERM if argv[1] == 'sigterm' else signal.SIGINT)
  raise AssertionError('the signal did not stop the binary')


if __name__ == '__main__':
  common.run(main)
