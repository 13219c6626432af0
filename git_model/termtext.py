"""Text from outside the process, made safe to print on a terminal.

Much of what git-model prints was written by someone else: file names inside a cloned
repository's tracked directories, notes fetched from a teammate (metric names and values, model
names, authors, hosts), commit subjects, tag messages, an object store's error body. Printed raw,
an escape sequence in any of them retitles the terminal, clears the screen, fakes a prompt or
writes the clipboard. Two functions hold the line, and every human-readable output uses them
(`--json` needs neither: JSON escapes control characters and round-trips the text exactly):

- `quote_path` quotes a path exactly as git does (`quote_c_style`, git's quote.c): a path
  holding a control character, `"`, `\\` or (with `core.quotePath`, the default) any byte
  >= 0x80 is printed in double quotes with C escapes (`\\t`, `\\n`, `\\"`, `\\\\`, `\\a`, `\\b`,
  `\\f`, `\\r`, `\\v`) and three-digit octal for every other byte: `"e\\033]0;pwn\\007red"`. Paths
  that are not valid UTF-8 arrive here surrogateescape-decoded; their original bytes are quoted
  in octal, as git quotes them.
- `visible` shows C0 and C1 control characters and DEL as `\\xNN` (`\\n`, `\\r`, `\\t` for
  those three), so that text reaches the terminal as text.

One deliberate difference from git: with `core.quotePath=false` git writes every byte >= 0x80
raw, including the UTF-8 encoding of the C1 controls (U+0080..U+009F, which some terminals obey
as escape sequences) and bytes that are not UTF-8 at all. Here those stay quoted in octal; every
printable non-ASCII character is written as it is, which is what the setting is for.

The setting is read from git once per process and only when a path actually needs it (one
holding a non-ASCII character): a command printing ASCII paths, and the hooks' no-change path,
never pay for the git process. Standard library only, and no `re` or `subprocess` until text
actually needs escaping or the setting is read: the hooks and the fast status import this on
every run, and those two modules cost them ~15 ms (a `str.isprintable()` pass answers for
ordinary text).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

__all__ = [
    "control_character",
    "quote_path",
    "set_quote_path_setting",
    "shell_quote",
    "visible",
    "visible_lines",
]

# git's cq_lookup: the escape letter for the bytes that have one
_ESCAPES = {
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x22: '"',
    0x5C: "\\",
}
# what `visible` escapes (compiled when first needed: see the module's docstring)
_CONTROL = {
    False: r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]",  # one-line fields
    True: r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]",  # multi-line text
}
_compiled: dict[object, re.Pattern[str]] = {}


def _control(multiline: bool) -> re.Pattern[str]:
    found = _compiled.get(multiline)
    if found is None:
        import re

        found = _compiled[multiline] = re.compile(_CONTROL[multiline])
    return found


def _plain_ascii(path: str) -> bool:
    """Printable ASCII without `"` or `\\`: a path that never needs quoting."""
    return path.isascii() and path.isprintable() and '"' not in path and "\\" not in path


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_setting: bool | None = None  # core.quotePath of this process, once read


def set_quote_path_setting(value: bool | None) -> None:
    """Fix the `core.quotePath` this process uses (None: read it from git when first needed).

    For a command that already knows it, and for tests."""
    global _setting
    _setting = value


def _quote_path_setting() -> bool:
    """`core.quotePath` as git sees it here (`-c` included); true, git's default, if unreadable."""
    global _setting
    if _setting is None:
        import subprocess

        try:
            proc = subprocess.run(
                ["git", "config", "--type=bool", "--get", "core.quotePath"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            _setting = proc.stdout.strip() != b"false"
        except OSError:
            _setting = True
    return _setting


def _octal(data: bytes) -> str:
    return "".join(f"\\{b:03o}" for b in data)


def _char_bytes(ch: str) -> bytes:
    try:
        return ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that was never a byte: git never sends one
        return ch.encode("utf-8", "surrogatepass")


def quote_path(path: str, *, quote_path_setting: bool | None = None) -> str:
    """`path` as git prints it in human output (`git status`, `git diff --stat`, `ls-files`).

    `quote_path_setting` is `core.quotePath`; None (the default) uses this process's setting,
    read from git once and only if `path` holds a non-ASCII character.
    """
    if _plain_ascii(path):
        return path  # the common case: nothing to quote
    if quote_path_setting is None:
        quote_path_setting = True if path.isascii() else _quote_path_setting()
    out: list[str] = []
    quoted = False
    for ch in path:
        code = ord(ch)
        if 0x20 <= code < 0x7F and code not in _ESCAPES:
            out.append(ch)
            continue
        if (
            code >= 0x80
            and not quote_path_setting
            and not (code <= 0x9F or 0xD800 <= code <= 0xDFFF)
        ):
            out.append(ch)  # printable non-ASCII with core.quotePath=false: as it is
            continue
        quoted = True
        letter = _ESCAPES.get(code)
        out.append(f"\\{letter}" if letter else _octal(_char_bytes(ch)))
    return f'"{"".join(out)}"' if quoted else path


def _show(match: re.Match[str]) -> str:
    ch = match.group()
    short = _SHORT.get(ch)
    if short:
        return short
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code >= 0xD800:
        return f"\\u{code:04x}"
    return f"\\x{code:02x}"


def visible(text: str, *, multiline: bool = False) -> str:
    """`text` with every C0/C1 control character and DEL written as an escape (`\\x1b`).

    One-line fields (names, values, subjects, authors) show newline and tab as `\\n` and `\\t`
    too, so they cannot fake another line of output; `multiline=True` (tag messages, a remote's
    error body) keeps newlines and tabs. Lone surrogates (bytes that were not UTF-8) are shown
    as `\\xNN` too, so the result always encodes.
    """
    if text.isprintable():  # (no control character, surrogate or line separator at all)
        return text
    pattern = _control(multiline)
    if not pattern.search(text):
        return text
    return pattern.sub(_show, text)


def control_character(text: str) -> bool:
    """Does `text` hold a C0/C1 control character or DEL? (Names git-model writes refuse them.)"""
    return not text.isprintable() and _control(False).search(text) is not None


def visible_lines(text: str) -> str:
    """Multi-line text (a tag message, an error body, a whole message): `visible` keeping
    newlines and tabs."""
    return visible(text, multiline=True)


_SHELL_SAFE = r"[\w@%+=:,./-]+"


def shell_quote(path: str) -> str:
    """`path` as a shell word to paste into a suggested command (`git model rm PATH`).

    `shlex.quote` for printable text; a path holding a control character or bytes that are
    not UTF-8 becomes bash's `$'...'` with git's escapes, which bash and zsh read back to the
    same bytes."""
    import re

    if re.fullmatch(_SHELL_SAFE, path, re.ASCII):
        return path
    if not control_character(path):
        return "'" + path.replace("'", "'\"'\"'") + "'"
    quoted = quote_path(path, quote_path_setting=True)[1:-1]
    return "$'" + quoted.replace("'", "\\'") + "'"
