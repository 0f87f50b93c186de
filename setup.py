"""Build of the compiled kernels (the metadata is in pyproject.toml).

Every ``segeval/core/kernels/c_*.pyx`` is one extension module, compiled with the C sources of
``segeval/core/kernels/native/`` it names in its ``# distutils: sources`` line. The kernels
use no Python API and release the GIL; they need only a C99 compiler (no NumPy headers: the
Cython wrappers take typed memoryviews). ``CFLAGS``/``LDFLAGS`` from the environment are added
by setuptools (the AddressSanitizer build of ``fuzz/`` uses them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
KERNELS = Path("segeval") / "core" / "kernels"

if sys.platform == "win32":  # pragma: no cover - MSVC
    CFLAGS = ["/O2"]
else:
    # -g0: no debug sections (they were 80 % of the module); these come after the environment's
    # CFLAGS (the AddressSanitizer build adds its -fsanitize there)
    CFLAGS = ["-O3", "-g0", "-std=c99", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]

extensions = [
    Extension(
        ".".join((*KERNELS.parts, pyx.stem)),
        [str(KERNELS / pyx.name)],
        include_dirs=[str(KERNELS / "native")],
        extra_compile_args=CFLAGS,
        # a platform where it does not compile still installs: segeval then warns once and
        # runs the NumPy reference kernels (segeval.core.kernels.compiled_available)
        optional=True,
    )
    for pyx in sorted((HERE / KERNELS).glob("c_*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "initializedcheck": False, "embedsignature": True},
    ),
)
