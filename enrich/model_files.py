"""Finding a hand model's two files: a MANO install, the shipped open model, or what ``source`` or
$ENRICH_HAND_MODEL names."""

from __future__ import annotations

import os
from pathlib import Path

from enrich import openhand
from enrich.errors import HandModelError

PathLike = str | os.PathLike[str]
ENV_VAR = "ENRICH_HAND_MODEL"
MODELS_DIR = openhand.DEFAULT_DIR
MANO_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "right": ("MANO_RIGHT.pkl", "MANO_RIGHT.npz"),
    "left": ("MANO_LEFT.pkl", "MANO_LEFT.npz"),
}
OPEN_FILE_NAMES: dict[str, str] = openhand.FILE_NAMES


def mano_pair(directory: Path) -> dict[str, Path]:
    """The MANO files present in ``directory`` ({side: path}, possibly incomplete)."""
    found = {}
    for side, names in MANO_FILE_NAMES.items():
        for name in names:
            if (directory / name).is_file():
                found[side] = directory / name
                break
    return found


def _open_pair(directory: Path) -> dict[str, Path]:
    return {side: directory / name for side, name in OPEN_FILE_NAMES.items() if (directory / name).is_file()}


def _complete(pair: dict[str, Path], directory: Path, kind: str) -> dict[str, Path]:
    missing = [side for side in ("right", "left") if side not in pair]
    if missing:
        names = MANO_FILE_NAMES if kind == "MANO" else {s: (n,) for s, n in OPEN_FILE_NAMES.items()}
        wanted = " or ".join(names[missing[0]])
        raise HandModelError(directory, f"expected both {kind} hand files, {wanted} is missing")
    return {"right": pair["right"], "left": pair["left"]}


def _files_in(source: Path) -> dict[str, Path]:
    if source.is_file():
        directory = source.parent
        if any(source.name in names for names in MANO_FILE_NAMES.values()):
            return _complete(mano_pair(directory), directory, "MANO")
        if source.name in OPEN_FILE_NAMES.values():
            return _complete(_open_pair(directory), directory, "open-model")
        raise HandModelError(
            source,
            "expected a hand-model file named MANO_RIGHT.pkl / MANO_LEFT.pkl (or .npz) or "
            f"{' / '.join(OPEN_FILE_NAMES.values())}, found another name",
        )
    if source.is_dir():
        mano = mano_pair(source)
        if mano:
            return _complete(mano, source, "MANO")
        opened = _open_pair(source)
        if opened:
            return _complete(opened, source, "open-model")
        raise HandModelError(
            source,
            "expected MANO_RIGHT.pkl and MANO_LEFT.pkl (or .npz), or the open model's "
            f"{' and '.join(OPEN_FILE_NAMES.values())}, found neither",
        )
    raise HandModelError(source, "hand-model file or directory not found")


def find_hand_model_files(source: PathLike | None = None) -> dict[str, Path]:
    """{"right": path, "left": path} of the hand model to use.

    ``source``: a directory holding MANO_RIGHT.pkl and MANO_LEFT.pkl (or .npz) or the open model's two files, or
    one of those files (its partner is taken from the same directory). ``None`` tries, in order:
    ``$ENRICH_HAND_MODEL`` (directory or file), ``models/mano/`` when it holds MANO files, then the shipped open
    model in ``models/``. Raises HandModelError when the chosen place lacks a file.
    """
    if source is not None:
        return _files_in(Path(source))
    env = os.environ.get(ENV_VAR)
    if env:
        return _files_in(Path(env))
    mano_dir = MODELS_DIR / "mano"
    if mano_pair(mano_dir):
        return _complete(mano_pair(mano_dir), mano_dir, "MANO")  # half a MANO install is an error, not a fallback
    opened = _open_pair(MODELS_DIR)
    if len(opened) < 2:
        raise HandModelError(MODELS_DIR, "expected the shipped open hand model; run python -m enrich.openhand")
    return {"right": opened["right"], "left": opened["left"]}
