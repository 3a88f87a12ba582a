"""enrich: 3D hands (MANO), 2D hand tracks and hand-object contacts for Something-Something V2."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("enrich")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "open_results"]


def __getattr__(name: str) -> object:
    # lazy: `import enrich` must not load h5py (and `enrich --help` nothing heavy)
    if name == "open_results":
        from enrich.store import open_results

        return open_results
    raise AttributeError(f"module 'enrich' has no attribute {name!r}")
