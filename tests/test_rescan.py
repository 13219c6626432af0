"""A tracked directory that changed is scanned again only where it changed (rescan.py): the
folders whose files' stat data digest as the stamps saw them keep their lines of the old
listing. Whatever changed, and however, the listing the hook records and the answer status
gives are the ones a full scan gives."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Shell

from git_model.hashing import Oid
from git_model.hooks.commit import open_context
from git_model.listing import listing_path
from git_model.ops.context import Context
from git_model.rescan import _in_folders, scan_again
from git_model.stamps import Stamps

FOLDERS = ["", "a/", "a/b/", "a/b/c/", "c/", "d/", "e/f/"]


def _next_second() -> None:
    time.sleep(1.05 - time.time() % 1)


def _expected(top: Path) -> bytes:
    """The listing a full scan writes, computed here without git-model."""
    lines = []
    for path in sorted(p for p in top.rglob("*") if p.is_file()):
        rel = path.relative_to(top).as_posix()
        data = path.read_bytes()
        mode = "755" if os.stat(path).st_mode & 0o100 else "644"
        lines.append((rel, f"{hashlib.sha256(data).hexdigest()}\t{len(data)}\t{mode}\t{rel}\n"))
    return "".join(line for _, line in sorted(lines)).encode()


def _build(repo: Shell) -> Path:
    for folder in FOLDERS:
        for i in range(4):
            repo.write(f"data/{folder}f{i}.bin", os.urandom(200 + i))
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    _next_second()  # (what was written is no longer racy for the stamps taken from now on)
    repo.git("commit", "-q", "--allow-empty", "-m", "stamped")
    return repo.cwd / "data"


def _modify(top: Path) -> None:
    (top / "a/b/f1.bin").write_bytes(os.urandom(201))  # same size, new bytes


def _add_folder(top: Path) -> None:
    (top / "g/h").mkdir(parents=True)
    (top / "g/h/new.bin").write_bytes(b"new")


def _remove_folder(top: Path) -> None:
    for p in (top / "c").iterdir():
        p.unlink()
    (top / "c").rmdir()


def _chmod(top: Path) -> None:
    os.chmod(top / "d/f2.bin", 0o755)


def _rename(top: Path) -> None:
    os.rename(top / "e/f/f0.bin", top / "e/f/zz.bin")


def _folder_becomes_file(top: Path) -> None:
    _remove_folder(top)
    (top / "c").write_bytes(b"a file where a folder was")


def _file_becomes_folder(top: Path) -> None:
    (top / "f0.bin").unlink()
    (top / "f0.bin").mkdir()
    (top / "f0.bin/inside.bin").write_bytes(b"a folder where a file was")


def _top_level(top: Path) -> None:
    (top / "b-sorts-between.bin").write_bytes(b"between a/ and c/")


def _same_tick_kept_times(top: Path) -> None:
    """Rewritten with the same size and its old timestamps put back."""
    path = top / "a/f3.bin"
    st = os.stat(path)
    path.write_bytes(os.urandom(st.st_size))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _tab_in_name(top: Path) -> None:
    (top / "a/x\ty.bin").write_bytes(b"a tab in its name")  # (the listing's separator)


CHANGES: list[Callable[[Path], None]] = [
    _tab_in_name,
    _modify,
    _add_folder,
    _remove_folder,
    _chmod,
    _rename,
    _folder_becomes_file,
    _file_becomes_folder,
    _top_level,
    _same_tick_kept_times,
]


@contextlib.contextmanager
def _stamped(
    repo: Shell, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Context, Stamps, tuple[set[str], set[str]]]]:
    """The repository's context, its stamps with "data" fingerprinted now, and what
    `Stamps.reusable` makes of it against the manifest's listing."""
    monkeypatch.chdir(repo.cwd)
    ctx = open_context()
    assert ctx is not None
    with ctx:
        stamps = Stamps(ctx.repo.git_dir, ctx.root)
        stamps.take("data")
        split = stamps.reusable("data", str(ctx.manifest().artifacts["data"].oid))
        assert split is not None
        yield ctx, stamps, split


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_the_hook_records_what_a_full_scan_would(
    repo: Shell, change: Callable[[Path], None]
) -> None:
    top = _build(repo)
    change(top)
    assert "modified  data" in repo.model("status").stdout
    out = repo.git("commit", "-q", "--allow-empty", "-m", "v2")
    assert "recorded data" in out.stderr
    recorded = repo.git("show", f"HEAD:{listing_path('data')}").stdout.encode()
    assert recorded == _expected(top)
    # and from stamps of the rescan itself: a second change, then a third
    _modify(top)
    _top_level(top)
    repo.git("commit", "-q", "--allow-empty", "-m", "v3")
    assert repo.git("show", f"HEAD:{listing_path('data')}").stdout.encode() == _expected(top)
    assert repo.model("status").stdout.startswith("unchanged  data")


def test_only_the_changed_folders_are_read_again(
    repo: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rescan's listing is byte for byte the full scan's, and it is the one used."""
    top = _build(repo)
    _modify(top)
    _add_folder(top)
    with _stamped(repo, monkeypatch) as (ctx, stamps, (unchanged, changed)):
        assert changed == {"a/b/", "g/h/"} and unchanged == set(FOLDERS) - {"a/b/"}
        art = ctx.manifest().artifacts["data"]
        written = io.BytesIO()
        again = scan_again(
            ctx.workspace(), stamps, ctx.reader(None), "data", art, store=False, out=written
        )
        full = ctx.workspace().scan("data", store=False)
        assert again is not None and full is not None
        assert written.getvalue() == full.listing == _expected(top)
        assert again.artifact == full.artifact
        assert (again.added, again.removed, again.modified) == (
            ["g/h/new.bin"],
            [],
            ["a/b/f1.bin"],
        )


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_status_says_what_a_full_scan_says(repo: Shell, change: Callable[[Path], None]) -> None:
    """Status from the folders that changed names the same files, word for word, as status
    with no stamps of folders (a full scan compared line by line)."""
    top = _build(repo)
    change(top)
    (_modify if change is not _modify else _top_level)(top)  # and a second folder
    quick = repo.model("status", "--json").stdout
    shutil.rmtree(repo.cwd / ".git" / "model" / "stamps.d")
    full = repo.model("status", "--json").stdout
    assert quick == full
    assert json.loads(full)["artifacts"][0]["state"] == "modified"


def test_a_lost_or_foreign_folders_file_means_a_full_scan(repo: Shell) -> None:
    top = _build(repo)
    folders = repo.cwd / ".git" / "model" / "stamps.d"
    files = list(folders.iterdir())
    assert len(files) == 1
    files[0].write_bytes(b"\x00not marshal")
    _modify(top)
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")
    assert repo.git("show", f"HEAD:{listing_path('data')}").stdout.encode() == _expected(top)
    files[0].unlink()
    _rename(top)
    repo.git("commit", "-q", "--allow-empty", "-m", "v3")
    assert repo.git("show", f"HEAD:{listing_path('data')}").stdout.encode() == _expected(top)


def test_a_folder_written_within_the_racy_window_of_its_stamp_is_read_again(
    repo: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder whose newest write falls within RACY_NS of the stamp (a second write that
    close could leave every stat field as stamped) is never taken from the old listing."""
    top = _build(repo)
    (top / "a/f0.bin").write_bytes(os.urandom(200))
    # dated a little ahead, so the stamp falls within its racy window however slow the commit
    ahead = time.time_ns() + 30 * 10**9
    os.utime(top / "a/f0.bin", ns=(ahead, ahead))
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")  # "a/" is racy for this stamp
    with _stamped(repo, monkeypatch) as (_ctx, _stamps, split):
        assert "a/" in split[1] and "a/b/" in split[0]


def test_a_directory_no_longer_tracked_leaves_no_folders_file(repo: Shell) -> None:
    _build(repo)
    folders = repo.cwd / ".git" / "model" / "stamps.d"
    assert len(list(folders.iterdir())) == 1
    repo.model("rm", "data")
    repo.git("commit", "-q", "-m", "data no longer tracked")
    assert list(folders.iterdir()) == []


def test_a_listing_git_model_made_is_not_read_line_by_line_again(
    repo: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listings that `add` and the hook's rescan write are made of checked lines, so the
    clone's stat cache knows them as checked by their oid (at a million files, reading one
    back line by line cost the next status or commit ~2 s); a listing edited by hand has
    other bytes, so another oid, and is checked in full when it is read."""
    top = _build(repo)  # (add: a full scan)
    _modify(top)
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")  # (the hook: a rescan)
    listing = repo.cwd / listing_path("data")
    listing.write_bytes(listing.read_bytes().replace(b"\ta/b/f1.bin", b"\t../f1.bin"))
    with _stamped(repo, monkeypatch) as (ctx, _stamps, _split):
        state = ctx.workspace().state
        for rev in ("HEAD~2", "HEAD"):
            assert state.listing_checked(ctx.manifest(rev).artifacts["data"].oid), rev
        assert not state.listing_checked(Oid(hashlib.sha256(listing.read_bytes()).hexdigest()))


def test_a_name_with_a_tab_stays_in_its_folder(repo: Shell) -> None:
    """A listing's path is everything after its third tab: read from the last tab, a file
    named `x<TAB>y.bin` in `a/` was taken for `y.bin` at the top, and when only `a/` changed
    the recorded listing held its line twice."""
    top = _build(repo)
    _tab_in_name(top)
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")
    _next_second()
    repo.git("commit", "-q", "--allow-empty", "-m", "stamped")
    (top / "a/f1.bin").write_bytes(os.urandom(201))  # only a/ changes
    repo.git("commit", "-q", "--allow-empty", "-m", "v3")
    assert repo.git("show", f"HEAD:{listing_path('data')}").stdout.encode() == _expected(top)
    assert repo.model("status").stdout.startswith("unchanged  data")


def test_the_lines_of_a_changed_folder_are_found_by_bisection_as_a_full_pass_finds_them() -> None:
    """`_in_folders` reads only the run of the sorted listing under each changed folder; on
    listings of every shape (nested folders, names that sort around `/`, a tab, non-ASCII,
    the top folder) it finds exactly the lines a pass over every line finds."""

    def every_line(listing: bytes, folders: set[bytes]) -> dict[bytes, bytes]:
        out = {}
        for line in listing.splitlines(keepends=True):
            path = line[:-1].split(b"\t", 3)[3]
            if path[: path.rfind(b"/") + 1] in folders:
                out[path] = line
        return out

    rng = random.Random(7)
    names = ["a", "b", "ab", "a b", "a-b", "a.b", "x\ty", "é", "z", "0"]
    for _ in range(300):
        paths = {
            "/".join(rng.choices(names, k=rng.randint(1, 4))) for _ in range(rng.randint(0, 40))
        }
        paths = {p for p in paths if not any(q.startswith(p + "/") for q in paths)}
        listing = b"".join(
            f"{hashlib.sha256(p.encode()).hexdigest()}\t{len(p)}\t644\t{p}\n".encode()
            for p in sorted(paths)
        )
        folders = {p.encode()[: p.encode().rfind(b"/") + 1] for p in paths}
        folders |= {b"", b"a/", b"a/b/", b"zz/", b"x\ty/"}
        wanted = set(rng.sample(sorted(folders), k=min(len(folders), rng.randint(0, 4))))
        found = {path: line for path, (_oid, line) in _in_folders(listing, wanted).items()}
        assert found == every_line(listing, wanted), (sorted(paths), wanted)
