"""Sub-commands of train.py, one module each."""
