"""Only a work-around: everything else is in pyproject.toml.

setuptools' editable install (`pip install -e .`) means to install data-files as plain
copies, but looks for `Distribution.has_data` where the method is named `has_data_files`
(setuptools/command/editable_wheel.py, `_run_install("data")`), so it never does, and
`git model --help` finds no manual page. This names the method it looks for.
"""

from setuptools import setup
from setuptools.dist import Distribution


class _Distribution(Distribution):  # type: ignore[misc]
    def has_data(self) -> bool:
        return bool(self.has_data_files())


setup(distclass=_Distribution)
