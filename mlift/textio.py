"""Reading users' text files: one place that strips a UTF-8 byte order mark (Windows editors and Excel write one; it
would otherwise end up in record 0's text or make its JSON unreadable) and names the file and line of bytes that are
not UTF-8 text (a binary or Latin-1 file given by mistake) instead of a bare UnicodeDecodeError."""

from __future__ import annotations

from pathlib import Path

BOM = b"\xef\xbb\xbf"
ENCODING = "utf-8-sig"  # reads UTF-8, dropping a leading BOM; for open()/read_text() of a user's text file


class TextFileError(ValueError):
    """A file that is not UTF-8 text; the message names the file and the line (`mlift` exits 2 on it)."""


def strip_bom(raw: bytes, first: bool) -> bytes:
    """A raw line without the BOM when it is the file's first line."""
    return raw[len(BOM):] if first and raw.startswith(BOM) else raw


def decode_problem(path: str | Path, data: bytes, exc: UnicodeDecodeError | None = None) -> str:
    """`path:line: ...` saying where the bytes stop being UTF-8 text (or that the file is binary)."""
    nul = data.find(b"\0")
    if nul >= 0 and (exc is None or nul <= exc.start):
        line = data.count(b"\n", 0, nul) + 1
        return f"{path}:{line}: a binary file (NUL byte at offset {nul}), expected UTF-8 text"
    start = exc.start if exc is not None else 0
    line = data.count(b"\n", 0, start) + 1
    return (f"{path}:{line}: not UTF-8 text (byte 0x{data[start]:02x} at offset {start}); save it as UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)")


def read_text(path: str | Path) -> str:
    """The file's text (BOM dropped); TextFileError naming the file and line when it is binary or not UTF-8."""
    data = Path(path).read_bytes()
    if b"\0" in data[:8192]:
        raise TextFileError(decode_problem(path, data))
    try:
        return data.decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise TextFileError(decode_problem(path, data, exc)) from None


def check_not_binary(path: str | Path, head: int = 65536) -> None:
    """TextFileError when the file's first bytes hold a NUL (an image, an archive, a model file given as text)."""
    with open(path, "rb") as fh:
        data = fh.read(head)
    if b"\0" in data:
        raise TextFileError(decode_problem(path, data))
