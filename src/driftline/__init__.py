"""Driftline: walk-forward training, calibration and drift monitoring for time-series classifiers.

Importing this package is cheap: it loads neither Prefect nor MLflow (tasks and flows do).
"""

from driftline.errors import ConfigError, DataError, DriftlineError, InsufficientDataError, ValidationFailed

__version__ = "0.1.0"


# The packages whose source shapes a result (core, Prefect tasks, flows) and the lock file that pins
# every library they call: an edit in any of them must change the cache keys and the rerun fingerprint.
CODE_PACKAGES = ("driftline", "flows", "tasks")
LOCK_FILE = "uv.lock"


def code_fingerprint(package_dirs, lock_file=None) -> str:
    """``<version>+<sha256>`` over every ``*.py`` under ``package_dirs`` (recursively, by relative path)
    and ``lock_file``'s bytes; without a lock file (an installed wheel), over the installed distributions'
    names and versions, which the lock decided. Uncached: :func:`code_version` caches it per process."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(__version__.encode())
    for folder in map(Path, package_dirs):
        digest.update(b"\0package\0" + folder.name.encode())
        for file in sorted(folder.rglob("*.py")):
            if "__pycache__" in file.parts:
                continue
            digest.update(b"\0" + file.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(file.read_bytes())
    if lock_file is not None and Path(lock_file).is_file():
        digest.update(b"\0lock\0" + Path(lock_file).read_bytes())
    else:
        from importlib import metadata

        installed = sorted({f"{d.metadata['Name']}=={d.version}".lower() for d in metadata.distributions()})
        digest.update(b"\0installed\0" + "\n".join(installed).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def code_sources():
    """The folders of :data:`CODE_PACKAGES` as this interpreter imports them (found without importing
    ``flows``/``tasks``) and the project's lock file beside ``src/`` (None in an installed wheel)."""
    import importlib.util
    from pathlib import Path

    folders = []
    for name in CODE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"code_version: package {name!r} is not importable; cannot fingerprint the code")
        folders.extend(Path(location) for location in spec.submodule_search_locations)
    here = Path(__file__).resolve().parent
    lock = here.parent.parent / LOCK_FILE if here.parent.name == "src" else None
    return folders, lock


_code_version: str | None = None


def code_version() -> str:
    """``<version>+<sha256>`` of ``src/driftline``, ``flows/``, ``tasks/`` and ``uv.lock`` (see
    :func:`code_fingerprint`): changes with any edit, for cache keys and lineage. Computed once per process
    (~tens of ms); a changed file is seen by the next process, i.e. the next ``driftline`` run."""
    global _code_version
    if _code_version is None:
        _code_version = code_fingerprint(*code_sources())
    return _code_version


__all__ = [
    "ConfigError",
    "DataError",
    "DriftlineError",
    "InsufficientDataError",
    "ValidationFailed",
    "__version__",
    "code_fingerprint",
    "code_sources",
    "code_version",
]
