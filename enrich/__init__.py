"""enrich: 3D hands (MANO), 2D hand tracks and hand-object contacts for Something-Something V2."""

__all__ = ["__version__", "open_results"]


def __getattr__(name: str) -> object:
    # lazy: `import enrich` must not load h5py (and `enrich --help` nothing heavy); the version lookup
    # (importlib.metadata, ~50 ms) waits too, so that `enrich` handles Ctrl-C within its first ~0.1 s
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("enrich")
        except PackageNotFoundError:  # running from a checkout that was never installed
            return "0+unknown"
    if name == "open_results":
        from enrich.store import open_results

        return open_results
    raise AttributeError(f"module 'enrich' has no attribute {name!r}")
