"""Where numba keeps the engine's machine code, and whether it is there yet.

The compiled loop takes ~20 s of CPU to compile once; numba caches the result. Next to the
module (numba's default) fails on a read-only install and notices only a change to a
function's own file, so the cache lives in the user's cache directory instead, in a folder
named by a digest of what the machine code depends on: the salesim, numba and Python
versions and the compiled modules' source. An edit to any compiled module or an upgrade
starts a fresh folder, and every process of a run (workers, test processes) uses the same
one. ``SALESIM_CACHE_DIR`` overrides the place.

This module imports neither numba nor NumPy until it compiles, so the CLI can ask ``cold()``
before deciding to print its notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path

ENV = "SALESIM_CACHE_DIR"
# The compiled modules: their source is part of the cache's key.
SOURCES = ("compiled_random.py", "compiled_dists.py", "trial_loop.py")
COMPILE_SECONDS = 20  # CPU seconds a cold compile takes on a 2.5 GHz core (the notice's N)


def cache_root() -> Path:
    """salesim's cache directory: ``$SALESIM_CACHE_DIR``, else the platform's user cache."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return base / "salesim"


def _key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = f"{version('salesim')} numba {version('numba')}"
    except PackageNotFoundError:
        versions = "unknown"
    digest = hashlib.sha256(f"{versions} {sys.version}".encode())
    here = Path(__file__).parent
    for name in SOURCES:
        try:
            digest.update((here / name).read_bytes())
        except OSError:  # not plain files (a zip): the versions alone
            pass
    return f"py{sys.version_info[0]}{sys.version_info[1]}-{digest.hexdigest()[:16]}"


_dir: Path | None = None


def cache_dir() -> Path:
    """This build's folder: machine code, the compile lock and the ``compiled`` stamp."""
    global _dir
    if _dir is None:
        _dir = cache_root() / "numba" / _key()
    return _dir


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def njit(fn=None, **options):
    """``numba.njit(cache=True)`` with the cache in ``cache_dir()``. With no writable cache
    anywhere it still compiles, uncached, rather than fail at import."""
    import numba

    def decorate(f):
        where = cache_dir()
        saved = numba.config.CACHE_DIR
        # numba picks a function's cache folder when it is decorated: point it at ours
        # just then, leaving the setting as it was for anyone else's numba code.
        numba.config.CACHE_DIR = str(where) if _writable(where) else saved
        try:
            return numba.njit(cache=True, **options)(f)
        except RuntimeError:  # no locator: nowhere to write a cache
            return numba.njit(**options)(f)
        finally:
            numba.config.CACHE_DIR = saved

    return decorate if fn is None else decorate(fn)


def cold() -> bool:
    """True until a run of this build has finished compiling (its stamp is missing)."""
    return not (cache_dir() / "compiled").exists()


def mark_compiled() -> None:
    with contextlib.suppress(OSError):
        (cache_dir() / "compiled").touch()


@contextlib.contextmanager
def compile_lock():
    """Held while a process compiles: processes starting cold at once (workers, test
    processes) wait for the first to finish and then load its machine code, instead of
    each compiling the same thing. A no-op where file locks are unavailable."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        handle = open(cache_dir() / "compile.lock", "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
