"""enrich: 3D hands (MANO), 2D hand tracks and hand-object contacts for Something-Something V2."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("enrich")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

from enrich.store import open_results  # noqa: E402

__all__ = ["__version__", "open_results"]
