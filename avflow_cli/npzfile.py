"""What is wrong with a file that ``np.load`` would not read as an ``.npz`` archive.

numpy tries a file that is neither a zip (``.npz``) nor an ``.npy`` as a pickle, and with
``allow_pickle=False`` says "This file contains pickled (object) data" — about a text file, an
HTML page or an empty file named ``.npz`` too. :func:`npz_problem` names what the file is instead.
"""

from __future__ import annotations

from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"


def npz_problem(path: str | Path, err: BaseException) -> str:
    """A one-line reason for ``err`` raised by ``np.load(path)`` of what should be an .npz archive."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as read_err:
        return f"cannot read ({read_err.strerror})"
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return f"a damaged or foreign .npz archive ({err})"
    if head.startswith(NPY_MAGIC):
        return "a single .npy array, not an .npz archive"
    if not head:
        return "an empty file, not a valid .npz archive"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    kind = "a text file" if printable >= 0.95 * len(head) else "data of an unknown format"
    return f"not a valid .npz archive (a zip of .npy arrays): it is {kind}"
