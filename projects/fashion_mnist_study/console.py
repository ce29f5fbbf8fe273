"""What the study prints: progress lines and the one-line error."""
import sys

PROG = 'fashion_mnist_study/run.py'


def fail(message: str):
    """Print ``message`` as the study's one error line and exit with 1."""
    print(f'{PROG}: error: {message}', file=sys.stderr)
    sys.exit(1)


def log(message: str):
    print(f'[study] {message}', flush=True)
