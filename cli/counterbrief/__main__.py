"""`python -m counterbrief`: the same as the counterbrief command."""
from .cli import run

run()
