"""Reading a MANO-layout .pkl or .npz without chumpy: chumpy objects in the pickle become stand-ins that keep
their pickled state, their arrays are taken from it, and only data-holding globals are accepted."""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from enrich.errors import HandModelError
from enrich.model_files import PathLike


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps the pickled state for ``_chumpy_array``."""

    chumpy_class = "chumpy"
    state: Any = None  # class default: unpickling creates instances without calling __init__

    def __new__(cls, *args: Any, **kwargs: Any) -> _ChumpyStandIn:
        return object.__new__(cls)  # whatever arguments the pickle passes to the chumpy class

    def __setstate__(self, state: Any) -> None:
        self.state = state


_STAND_INS: dict[str, type[_ChumpyStandIn]] = {}
_SAFE_BUILTINS = frozenset(
    {"object", "set", "frozenset", "slice", "complex", "bytearray", "bytes", "list", "dict", "tuple", "int", "float"}
)
_SAFE_GLOBALS = frozenset(
    {
        ("copy_reg", "_reconstructor"),  # Python 2 pickles (the official MANO files)
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        ("collections", "OrderedDict"),
    }
)
_NUMPY_MODULES = frozenset(
    {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric"}
)
_NUMPY_FUNCTIONS = frozenset({"_reconstruct", "scalar", "_frombuffer"})


def _stand_in_for(module: str, name: str) -> type[_ChumpyStandIn]:
    key = f"{module}.{name}"
    if key not in _STAND_INS:
        _STAND_INS[key] = type(f"ChumpyStandIn_{name}", (_ChumpyStandIn,), {"chumpy_class": key})
    return _STAND_INS[key]


class _RefusedGlobal(pickle.UnpicklingError):
    """A global outside the allow-list; its message is the dotted name."""


class _ModelUnpickler(pickle.Unpickler):
    """Unpickler for MANO-layout files: chumpy classes become stand-ins; only data-holding globals are allowed."""

    def find_class(self, module: str, name: str) -> Any:
        root = module.split(".")[0]
        if root == "chumpy":
            return _stand_in_for(module, name)
        if (module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS) or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module in _NUMPY_MODULES:
            obj = super().find_class(module, name)
            if (
                name in _NUMPY_FUNCTIONS
                or obj is np.dtype
                or obj is np.ndarray
                or (isinstance(obj, type) and issubclass(obj, np.generic))
            ):
                return obj
        if module.startswith("scipy.sparse") and name.endswith(("_matrix", "_array")):
            # Old pickles name modules that scipy has since moved (scipy.sparse.csc); the classes are still public.
            obj = getattr(scipy.sparse, name, None)
            if isinstance(obj, type):
                return obj
        raise _RefusedGlobal(f"{module}.{name}")


def _chumpy_array(obj: _ChumpyStandIn, path: Path, key: str) -> np.ndarray:
    """The array a pickled chumpy object held: a plain ``chumpy.ch.Ch`` keeps it under state key 'x'."""
    state = obj.state
    if obj.chumpy_class.endswith(".Ch") and isinstance(state, Mapping) and "x" in state:
        x = state["x"]
        if isinstance(x, _ChumpyStandIn):
            return _chumpy_array(x, path, key)
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            found = type(x).__name__
            raise HandModelError(path, f"'{key}': expected an array inside chumpy.ch.Ch, found {found}") from exc
    keys = sorted(state) if isinstance(state, Mapping) else type(state).__name__
    raise HandModelError(
        path, f"'{key}': expected a plain chumpy.ch.Ch holding an array, found {obj.chumpy_class} (state {keys})"
    )


def _plain(value: Any, path: Path, key: str) -> Any:
    """``value`` with chumpy stand-ins replaced by numpy arrays (nested containers included)."""
    if isinstance(value, _ChumpyStandIn):
        return _chumpy_array(value, path, key)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, path, key) for v in value)
    return value


def read_model_data(path: PathLike) -> dict[str, Any]:
    """The raw dict of a MANO-layout .pkl or .npz file, chumpy objects turned into numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise HandModelError(path, "expected a MANO-layout hand-model file (.pkl or .npz), file not found")
    raw = path.read_bytes()
    if path.suffix == ".npz":
        try:
            with np.load(io.BytesIO(raw), allow_pickle=True) as npz:  # sparse J_regressor is a pickled object
                data: Any = {k: npz[k].item() if npz[k].dtype == object and npz[k].ndim == 0 else npz[k] for k in npz}
        except Exception as exc:  # zipfile / pickle / ValueError: all mean an unreadable file
            why = f"{type(exc).__name__}: {exc}"
            raise HandModelError(path, f"expected a MANO-layout .npz, could not read it ({why})") from exc
    else:
        try:
            data = _ModelUnpickler(io.BytesIO(raw), encoding="latin1").load()
        except _RefusedGlobal as exc:
            found = f"found a reference to {exc} (refused)"
            raise HandModelError(path, f"expected only array data in the pickle, {found}") from exc
        except Exception as exc:  # EOFError (truncated), UnpicklingError, ...: all mean an unusable file
            why = f"{type(exc).__name__}: {exc}"
            raise HandModelError(
                path, f"expected a MANO-layout pickle, could not unpickle it (truncated or corrupt? {why})"
            ) from exc
    if not isinstance(data, Mapping):
        raise HandModelError(path, f"expected a dict of model arrays, found {type(data).__name__}")
    return {str(k): _plain(v, path, str(k)) for k, v in data.items()}
