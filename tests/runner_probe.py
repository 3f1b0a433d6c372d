"""A stand-in binary for tests/test_binary_runner.py: echoes what a `python -m` run sees."""
import json
import os
import sys
import time

if __name__ == '__main__':
  args = sys.argv[1:]
  if args and args[0] == 'sleep':
    time.sleep(float(args[1]))
  if args and args[0] == 'raise':
    raise RuntimeError('probe failure')
  print(json.dumps({'argv0': os.path.basename(sys.argv[0]), 'args': args, 'cwd': os.getcwd(),
                    'probe_env': os.environ.get('PROBE_ENV'), 'name': __name__}))
  print('to stderr', file=sys.stderr)
  sys.exit(int(args[1]) if args and args[0] == 'exit' else 0)
