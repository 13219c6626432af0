"""git-model: version machine-learning models the way git versions code.

The Python API for training and serving code lives here; it never imports the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"
