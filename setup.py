"""Build script. Metadata lives in pyproject.toml; this file exists for the
C++ extension (adaptive_rt._core, pybind11), which the engine adds here."""
from setuptools import setup

setup()
