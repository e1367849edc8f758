"""Data we draw ourselves: the demo SEM repository and its parts (like :mod:`sklearn.datasets`)."""
