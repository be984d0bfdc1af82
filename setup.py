"""Builds curate's one compiled extension (``curate.speedups.block_walk_c``); everything else is in pyproject.toml.

The extension reads lxml's C structures, so it compiles against the lxml headers of the build
environment; ``curate.speedups.block_walk`` checks at import that the installed lxml is the same
version and otherwise runs the plain path. ``optional=True``: a machine without a C compiler still
installs curate (and gets the plain path and a warning).
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension(
    "curate.speedups.block_walk_c",
    ["curate/speedups/block_walk_c.pyx"],
    include_dirs=lxml.get_include(),
    optional=True,
)
setup(ext_modules=cythonize([extension], language_level=3, quiet=True))
