"""Remotes: push and pull through a directory remote, and through the git host's LFS storage
(opt-in: --only lfs)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .core import (
    HASH_SCRIPT,
    Bench,
    GiB,
    Row,
    Spec,
    copy_in,
    fsync_file,
    place,
    ratio_row,
    remove,
    section,
    skipped,
)


@section("remotes")
def bench_remotes(b: Bench) -> Iterator[Row]:
    if not (b.has_command("push") and b.has_command("pull") and b.has_command("remote")):
        yield skipped("remotes", "push/pull 1 GiB to a directory remote")
        return
    yield from remote_large_rows(b)
    yield from remote_small_rows(b)


def remote_repo(b: Bench, name: str, source: Path, rel: str) -> tuple[Path, Path]:
    """A repo with `source` committed as the artifact `rel`, and its default directory
    remote (not made yet): (repo, the remote's folder)."""
    repo = b.repo(name)
    store = b.tmp / f"store-{name}"
    b.sh("git", "model", "remote", "add", "store", str(store), "--default", cwd=repo)
    place(source, repo / rel)
    b.sh("git", "model", "add", rel, cwd=repo)
    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    return repo, store


def remote_large_rows(b: Bench) -> Iterator[Row]:
    """Push and pull of one large file to a directory remote, against cp and against the
    floor: a verified transfer reads every byte through SHA-256 and makes its copy durable,
    so it cannot beat the slowest of cp, a hashlib pass and a copy with fsync."""
    source = b.data_file("model.bin")
    label = f"{b.size / GiB:g} GiB"
    repo, store = remote_repo(b, "remotes", source, "model.bin")
    copy_dest = b.tmp / "cp-remote"
    cp = Spec(
        ["cp", str(source), str(copy_dest)],
        b.tmp,
        setup=lambda: remove(copy_dest),
        after=lambda: fsync_file(copy_dest),
    )
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(source)], b.tmp)
    disk = Spec(
        ["dd", f"if={source}", f"of={copy_dest}", "bs=4M", "conv=fsync", "status=none"],
        b.tmp,
        setup=lambda: remove(copy_dest),
    )
    push = Spec(["git", "model", "push"], repo, setup=lambda: remove(store))

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / "model.bin")

    pulled = repo / "model.bin"
    pull = Spec(["git", "model", "pull"], repo, setup=forget, after=lambda: fsync_file(pulled))
    b.measure(push, pull, cp, hashed, disk)
    floor, name = max((cp.best, "cp"), (hashed.best, "hashlib"), (disk.best, "dd fsync"))
    yield Row("remotes", f"cp {label} file", cp.best, cpu=cp.cpu)
    yield Row("remotes", f"hashlib sha256 pass over {label}", hashed.best, cpu=hashed.cpu)
    yield Row("remotes", "copy + fsync (dd conv=fsync): the disk", disk.best, cpu=disk.cpu)
    note = f"floor = slowest of cp, hashlib, dd fsync ({name}): verified and durable"
    for spec, what in ((push, "push"), (pull, "pull")):
        row = ratio_row(
            "remotes", f"git model {what} {label} (directory)", spec, "floor", floor, 1.3
        )
        row.note = note
        yield row
        yield Row("remotes", f"  the same {what} against cp", spec.best, "cp", cp.best)
    remove(copy_dest)
    remove(repo)
    remove(store)


def remote_small_rows(b: Bench) -> Iterator[Row]:
    """Push and pull of `--files` small files to a directory remote, against DVC doing the
    same with the same files and its own directory remote, run alternately."""
    source = b.tmp / "data" / "remote-small"
    b.small_files(source)
    label = f"{b.nfiles} files of 4 KiB"
    repo, store = remote_repo(b, "remotes-small", source, "data")
    push = Spec(["git", "model", "push"], repo, setup=lambda: remove(store))

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / "data")

    pull = Spec(["git", "model", "pull"], repo, setup=forget)
    if shutil.which("dvc", path=b.env["PATH"]) is None:
        b.measure(push)
        b.measure(pull)
        yield Row("remotes", f"git model push {label}", push.best, cpu=push.cpu)
        yield Row("remotes", f"git model pull {label}", pull.best, cpu=pull.cpu)
        yield Row("remotes", "dvc push/pull", note="skipped: dvc not installed")
    else:
        dvc = b.repo("dvc-remotes-small", model=False)
        dvc_store = b.tmp / "dvc-store-small"
        b.sh("dvc", "init", "-q", cwd=dvc)
        b.sh("dvc", "config", "core.analytics", "false", cwd=dvc)
        b.sh("dvc", "remote", "add", "-d", "store", str(dvc_store), cwd=dvc)
        copy_in(source, dvc / "data")
        b.sh("dvc", "add", "-q", "data", cwd=dvc)
        dvc_push = Spec(["dvc", "push", "-q"], dvc, setup=lambda: remove(dvc_store))

        def dvc_forget() -> None:
            remove(dvc / ".dvc" / "cache")
            remove(dvc / "data")

        dvc_pull = Spec(["dvc", "pull", "-q"], dvc, setup=dvc_forget)
        b.measure(push, dvc_push)
        b.measure(pull, dvc_pull)
        for what, mine, theirs in (("push", push, dvc_push), ("pull", pull, dvc_pull)):
            yield Row("remotes", f"dvc {what} {label}", theirs.best, cpu=theirs.cpu)
            yield ratio_row(
                "remotes", f"git model {what} {label}", mine, f"dvc {what}", theirs.best, 0.5
            )
        remove(dvc)
        remove(dvc_store)
    remove(repo)
    remove(store)


# -- the git host's LFS storage (opt-in: --only lfs; needs the test extras) ---------------------


def _server(b: Bench, cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        env=b.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            time.sleep(0.5)  # the port opens a moment before the app answers
            return proc
        time.sleep(0.1)
    raise SystemExit(f"bench: {' '.join(cmd)} did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@section("lfs", default=False)
def bench_lfs(b: Bench) -> Iterator[Row]:
    """Push and pull through a Git LFS server (giftless on loopback, tests/lfs_server.py)
    against the same through a directory remote (1 GiB) and moto's S3 server (small files)."""
    try:
        import giftless  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        yield skipped("lfs", "push/pull through an LFS server (pip install -e '.[test]')")
        return
    lfs_port, s3_port = _free_port(), _free_port()
    storage = b.tmp / "lfs-storage"
    script = Path(__file__).resolve().parents[2] / "tests" / "lfs_server.py"
    servers = [
        _server(b, [sys.executable, str(script), str(lfs_port), str(storage)], lfs_port),
        _server(
            b, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port
        ),
    ]
    lfs_url = f"http://127.0.0.1:{lfs_port}/team/models.git/info/lfs"
    b.env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        NO_PROXY="127.0.0.1",
    )
    try:
        yield from _lfs_large(b, lfs_url, storage)
        yield from _lfs_small(b, lfs_url, storage, s3_port)
    finally:
        for proc in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            proc.wait()
        remove(storage)


def _pair(b: Bench, repo: Path, rel: str, remote: str) -> tuple[Spec, Spec]:
    """push and pull of `rel` to/from `remote`; the caller's setup empties the remote."""

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / rel)
        os.sync()  # the pushes before left GiBs for the disk: no pull pays for their writeback

    push = Spec(["git", "model", "push", remote], repo)
    pull = Spec(["git", "model", "pull", remote], repo, setup=forget)
    return push, pull


def _lfs_large(b: Bench, lfs_url: str, storage: Path) -> Iterator[Row]:
    label = f"{b.size / GiB:g} GiB"
    repo, store = remote_repo(b, "lfs-large", b.data_file("model.bin"), "model.bin")
    b.sh("git", "model", "remote", "add", "lfs", lfs_url, cwd=repo)
    push, pull = _pair(b, repo, "model.bin", "store")
    push.setup = lambda: remove(store)
    lpush, lpull = _pair(b, repo, "model.bin", "lfs")
    lpush.setup = lambda: remove(storage / "team")
    b.measure(push, lpush)
    b.measure(pull, lpull)
    for what, mine, base in (("push", lpush, push), ("pull", lpull, pull)):
        yield Row("lfs", f"git model {what} {label} (directory)", base.best, cpu=base.cpu)
        yield ratio_row(
            "lfs", f"git model {what} {label} (LFS server)", mine, "directory", base.best, 1.5
        )
    remove(repo)
    remove(store)


def _lfs_small(b: Bench, lfs_url: str, storage: Path, s3_port: int) -> Iterator[Row]:
    source = b.tmp / "data" / "lfs-small"
    b.small_files(source)
    label = f"{b.nfiles} files of 4 KiB"
    repo, _ = remote_repo(b, "lfs-small", source, "data")
    b.sh("git", "model", "remote", "add", "lfs", lfs_url, cwd=repo)
    b.sh("git", "model", "remote", "add", "s3", "s3://bench/run0", cwd=repo)
    b.sh("git", "config", "model.remote.s3.endpointurl", f"http://127.0.0.1:{s3_port}", cwd=repo)
    b.sh("git", "config", "model.remote.s3.region", "us-east-1", cwd=repo)
    # an object a request, as the LFS batch API sends them: the like-for-like baseline (packs,
    # on S3 by default, send the set in a few requests: measured beside it, for the record)
    b.sh("git", "config", "model.remote.s3.pack", "off", cwd=repo)
    b.sh("git", "model", "remote", "add", "s3packs", "s3://bench/packs0", cwd=repo)
    b.sh(
        "git", "config", "model.remote.s3packs.endpointurl", f"http://127.0.0.1:{s3_port}", cwd=repo
    )
    b.sh("git", "config", "model.remote.s3packs.region", "us-east-1", cwd=repo)
    b.sh(
        sys.executable,
        "-c",
        "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='bench')",
        f"http://127.0.0.1:{s3_port}",
        cwd=repo,
    )
    runs = itertools.count(1)
    push, pull = _pair(b, repo, "data", "s3")
    push.setup = lambda: (
        b.sh(  # a fresh prefix: an empty remote for each push
            "git", "config", "model.remote.s3.url", f"s3://bench/run{next(runs)}", cwd=repo
        )
        and None
    )
    lpush, lpull = _pair(b, repo, "data", "lfs")
    lpush.setup = lambda: remove(storage / "team")
    ppush, ppull = _pair(b, repo, "data", "s3packs")
    packed_runs = itertools.count(1)
    ppush.setup = lambda: (
        b.sh(
            "git",
            "config",
            "model.remote.s3packs.url",
            f"s3://bench/packs{next(packed_runs)}",
            cwd=repo,
        )
        and None
    )
    b.measure(push, lpush, ppush)
    b.measure(pull, lpull, ppull)
    for what, mine, base, packed in (("push", lpush, push, ppush), ("pull", lpull, pull, ppull)):
        yield Row(
            "lfs",
            f"git model {what} {label} (S3, moto, an object a request)",
            base.best,
            cpu=base.cpu,
        )
        yield ratio_row("lfs", f"git model {what} {label} (LFS server)", mine, "S3", base.best, 1.5)
        yield Row(
            "lfs", f"git model {what} {label} (S3, moto, in packs)", packed.best, cpu=packed.cpu
        )
    remove(repo)
