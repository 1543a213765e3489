"""UCI Human Activity Recognition (Anguita et al. 2013): raw inertial windows, 9 channels x 128 steps at 50 Hz.

Read straight from an archive (``.zip`` as UCI distributes it, ``.tar.gz``/``.tgz``/``.tar``) or a directory holding,
per split,
``<channel>_<split>.txt`` (one window a line, 128 whitespace-separated floats) and ``y_<split>.txt`` (labels
1-6). Members are found by name anywhere in the archive, so both rnnkit's ``har-subset.tar.gz`` layout
(``train/body_acc_x_train.txt``) and the original ``UCI HAR Dataset/train/Inertial Signals/...`` work (macOS
resource forks in the UCI zip, ``__MACOSX/.../._*``, are skipped).
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError

CHANNELS = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
)
ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
STEPS = 128


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"{where}: line {line}: not valid UTF-8") from None


class _Source:
    """Member files of an archive or a directory, looked up by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.zip: zipfile.ZipFile | None = None
        self.files: dict[str, str] = {}
        if path.is_dir():
            self.files = {p.name: str(p) for p in sorted(path.rglob("*.txt")) if not p.name.startswith("._")}
            return
        if zipfile.is_zipfile(path):
            try:
                self.zip = zipfile.ZipFile(path)  # noqa: SIM115 - closed by close()
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"{path}: not a readable zip archive of UCI HAR files: {e}") from None
            names = [n for n in self.zip.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            self.files = {Path(n).name: n for n in names if not Path(n).name.startswith("._")}
            return
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            self.files = {Path(m.name).name: m.name for m in self.tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"{path}: not a readable tar archive of UCI HAR files: {str(e).splitlines()[0]}") from None

    def read(self, name: str) -> str:
        if name not in self.files:
            raise UserError(
                f"{self.path}: no member {name!r}; expected UCI HAR files <channel>_<split>.txt "
                f"and y_<split>.txt (channels {', '.join(CHANNELS)})"
            )
        where = f"{self.path}:{self.files[name]}"
        try:
            if self.zip is not None:
                raw = self.zip.read(self.files[name])
            elif self.tar is None:
                raw = Path(self.files[name]).read_bytes()
            else:
                f = self.tar.extractfile(self.files[name])
                assert f is not None
                raw = f.read()
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise UserError(f"{where}: cannot read: {e}") from None
        return _decode(raw, where)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        if self.zip is not None:
            self.zip.close()


def _parse_matrix(text: str, where: str, width: int) -> np.ndarray:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        values = np.array(" ".join(lines).split(), dtype=np.float32)
    except ValueError:
        for n, ln in enumerate(lines, start=1):
            for tok in ln.split():
                try:
                    float(tok)
                except ValueError:
                    raise UserError(f"{where}: line {n}: not a number: {tok!r}") from None
        raise
    if values.size != len(lines) * width:
        for n, ln in enumerate(lines, start=1):
            if len(ln.split()) != width:
                raise UserError(f"{where}: line {n}: {len(ln.split())} values, expected {width}")
    if not np.isfinite(values).all():
        n = int(np.flatnonzero(~np.isfinite(values))[0]) // width + 1
        raise UserError(f"{where}: line {n}: NaN or infinite value")
    return values.reshape(len(lines), width)


def read_har(path: Path, splits: tuple[str, ...] = ("train", "test")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (windows (n, 128, 9) float32, labels (n,) int64 in 0..5, i.e. ACTIVITIES order)."""
    src = _Source(path)
    try:
        out = {}
        for split in splits:
            chans = [_parse_matrix(src.read(f"{c}_{split}.txt"), f"{path}:{c}_{split}.txt", STEPS) for c in CHANNELS]
            y_name = f"y_{split}.txt"
            y = _parse_matrix(src.read(y_name), f"{path}:{y_name}", 1).ravel()
            n = {a.shape[0] for a in chans}
            if len(n) != 1 or y.size not in n:
                raise UserError(
                    f"{path}: {split} files disagree in length (windows per channel {sorted(n)}, labels {y.size})"
                )
            bad = np.flatnonzero((y != np.round(y)) | (y < 1) | (y > len(ACTIVITIES)))
            if bad.size:
                raise UserError(f"{path}:{y_name}: line {bad[0] + 1}: label {y[bad[0]]:g} is not an activity 1-6")
            out[split] = (np.stack(chans, axis=-1), y.astype(np.int64) - 1)
        return out
    finally:
        src.close()
