"""The one place git is run.

Everything goes through the `git` CLI, the authority on the index, refs, notes and hooks. The
environment is passed through untouched so that a hook honours `GIT_INDEX_FILE` and friends.
Machine-readable output only (`-z`), and one long-lived `cat-file --batch` for bulk reads.
"""

from __future__ import annotations

import os

from .errors import GitError, NotARepository

TYPE_CHECKING = False
if TYPE_CHECKING:  # subprocess, re and pathlib load lazily: ~10 ms the no-change hook skips
    import subprocess
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")
_LOCKED = r"Unable to create '([^']+\.lock)': File exists"


def operation_in_progress(git_dir: str | os.PathLike[str]) -> bool:
    """A merge, cherry-pick, revert or rebase is under way in the worktree of `git_dir`."""
    return any(os.path.exists(os.path.join(git_dir, name)) for name in IN_PROGRESS)


class Spawned:
    """A git command started now, in the current folder, and read when its answer is wanted.

    The commit hook starts the few git commands it needs, then walks the work tree while
    they run. `posix_spawn` starts them without importing `subprocess`; git's stderr goes to
    /dev/null, and a command that fails (or a git that cannot be started) answers with a
    non-zero code, for the caller to take its slower path, which reports errors in full.
    """

    def __init__(self, args: Sequence[str]) -> None:
        self._out: bytes | None = None
        self._code = 127
        self.pid: int | None = None
        r, w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        try:
            self.pid = os.posix_spawnp("git", ["git", *args], os.environ, file_actions=actions)
        except OSError:
            os.close(r)
            self._out = b""
        else:
            self._r = r
        finally:
            os.close(w)

    @staticmethod
    def available() -> bool:
        return hasattr(os, "posix_spawnp")

    def result(self) -> tuple[int, bytes]:
        """(exit code, standard output), once the command has ended."""
        if self._out is None:
            chunks = []
            try:
                while chunk := os.read(self._r, 1 << 16):
                    chunks.append(chunk)
            finally:
                os.close(self._r)
                assert self.pid is not None
                _, status = os.waitpid(self.pid, 0)
            self._code = os.waitstatus_to_exitcode(status)
            self._out = b"".join(chunks)
        return self._code, self._out


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    import subprocess

    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            env=env,
            check=False,
        )
    except FileNotFoundError as e:
        raise GitError("git is not installed or not on PATH; install git and retry") from e
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {_detail(proc)}")
    return proc


def _detail(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The line of git's complaint that says what is wrong; for a lock file left by a git
    that was killed, which file, and what to do about it."""
    import re

    text = proc.stderr.decode(errors="replace")
    locked = re.search(_LOCKED, text)
    if locked:
        return (
            f"{locked.group(1)} exists (a git process still running, or one killed while "
            "holding it): if no git is running, delete that file and rerun"
        )
    lines = text.strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


class Repo:
    """A git work tree and the places git-model keeps its state in it.

    A plain class rather than a dataclass: every hook builds one, and `dataclasses` (with the
    `inspect` it pulls in) costs a hook ~5 ms to import."""

    __slots__ = ("_catfile", "common_dir", "git_dir", "root")

    def __init__(self, root: Path, git_dir: Path, common_dir: Path) -> None:
        self.root = root  # the work tree's top level
        self.git_dir = git_dir  # this worktree's git dir
        self.common_dir = common_dir  # shared by all worktrees: where the cache lives
        self._catfile: CatFile | None = None

    def __repr__(self) -> str:
        return f"Repo(root={self.root!r}, git_dir={self.git_dir!r})"

    @classmethod
    def discover(cls, start: str | os.PathLike[str] | None = None) -> Repo:
        proc = run_git(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"],
            cwd=start,
            check=False,
        )
        if proc.returncode != 0:
            raise NotARepository(
                "not inside a git work tree; run 'git init' first or cd into a repository"
            )
        from pathlib import Path

        top, git_dir, common = proc.stdout.decode().splitlines()[:3]
        root = Path(top)
        common_path = Path(common)
        if not common_path.is_absolute():
            common_path = (Path(start or os.getcwd()) / common_path).resolve()
        return cls(root=root, git_dir=Path(git_dir), common_dir=common_path)

    @property
    def model_dir(self) -> Path:
        """Local, untracked state: cache objects, stat cache, locks."""
        return self.common_dir / "model"

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        return run_git(args, cwd=self.root, input=input, check=check).stdout

    def git_ok(self, *args: str) -> bool:
        return run_git(args, cwd=self.root, check=False).returncode == 0

    def rev_parse(self, rev: str) -> str | None:
        proc = run_git(
            ["rev-parse", "--verify", "-q", rev + "^{commit}"], cwd=self.root, check=False
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def head(self) -> str | None:
        return self.rev_parse("HEAD")

    def config_get(self, key: str) -> str | None:
        proc = run_git(["config", "--get", key], cwd=self.root, check=False)
        return proc.stdout.decode().rstrip("\n") if proc.returncode == 0 else None

    def config_set(self, key: str, value: str, *, add: bool = False) -> None:
        self.git("config", *(["--add"] if add else []), key, value)

    def ls_files(self, *paths: str) -> list[str]:
        out = self.git("ls-files", "-z", "--", *paths).decode()
        return [p for p in out.split("\0") if p]

    def add(self, paths: Iterable[str], *, force: bool = False) -> None:
        paths = list(paths)
        if paths:
            self.git("add", *(["-f"] if force else []), "--", *paths)

    def show_file(self, rev: str, path: str) -> bytes | None:
        """The bytes of `path` at `rev` (`:path` for the index), or None if absent."""
        return self.cat_file().read(f"{rev}:{path}" if rev else f":{path}")

    def cat_file(self) -> CatFile:
        if self._catfile is None:
            self._catfile = CatFile(self.root)
        return self._catfile

    def close(self) -> None:
        if self._catfile is not None:
            self._catfile.close()
            self._catfile = None


class CatFile:
    """A long-lived `git cat-file --batch`: ~35 µs a blob instead of a process each."""

    def __init__(self, cwd: Path) -> None:
        import subprocess

        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def read(self, spec: str) -> bytes | None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if "\n" in spec:
            return None
        self._proc.stdin.write(spec.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline()
        if not header or header.endswith(b" missing\n") or header.endswith(b" ambiguous\n"):
            return None
        size = int(header.split()[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)  # trailing newline
        return data

    def stream(self, spec: str, block: int = 1 << 20) -> Iterator[bytes] | None:
        """`read`, a block at a time (a listing of a million files is ~95 MiB): None if
        absent. Read the iterator to its end (or close it) before the next read: whatever is
        left of the blob is read and dropped then, so the next answer comes next."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if "\n" in spec:
            return None
        self._proc.stdin.write(spec.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline()
        if not header or header.endswith(b" missing\n") or header.endswith(b" ambiguous\n"):
            return None
        return self._body(int(header.split()[2]), block)

    def _body(self, left: int, block: int) -> Iterator[bytes]:
        out = self._proc.stdout
        assert out is not None
        try:
            while left > 0:
                data = out.read(min(block, left))
                if not data:
                    raise GitError("git cat-file --batch stopped in the middle of a blob")
                left -= len(data)
                yield data
        finally:
            while left > 0 and (data := out.read(min(block, left))):
                left -= len(data)
            out.read(1)  # trailing newline

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()
