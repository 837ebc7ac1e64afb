"""Kiln's Python package. ``kiln.worker`` serves an MLflow pyfunc model to
Kiln's Go runtime (``python -m kiln.worker --model-dir DIR``)."""

__version__ = "0.1.0"
