"""Registry tags: GTO's tag grammar, semantic versions, and reading/writing annotated tags.

The registry lives in plain annotated git tags so that it travels with `git push --tags`, a fresh
clone reads it with no extra step, and GTO (iterative/gto) reads the same repository. The names
follow GTO 1.x exactly (its `constants.tag_re` and `tag.TagTemplates`):

    NAME@vX.Y.Z          register a version              (no counter)
    NAME@vX.Y.Z!#N       deregister it
    NAME#STAGE#N         assign STAGE to the version at the tag's commit
    NAME#STAGE!#N        unassign it
    NAME@deprecated#N    deprecate the model

`N` is one counter per model: one more than the largest counter of any of its tags, so every
stage change is a new tag and none is ever moved. Messages keep GTO's default subject lines;
git-model appends trailers with the model version hash (and a metrics snapshot at registration)
so the registry can show them from the tag alone, e.g. in a clone that has not fetched the notes.

Semantic versions are compared here rather than with a library: the grammar has to be GTO's
exact regex anyway, and precedence is a sort key of a dozen lines.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .git import Repo, run_git

# -- GTO's grammar (gto/constants.py), copied so both tools split names identically --------------

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_FULLNAME_IN_TAG = f"(?P<dirname>[a-zA-Z0-9-_./]+=)?(?P<name>{_NAME})"
NAME_RE = re.compile(f"^{_NAME}$")
SEMVER_RE = re.compile(f"^v{_SEMVER}$")
TAG_RE = re.compile(
    f"^(?P<artifact>{_FULLNAME_IN_TAG})"
    f"(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))"
    r"|@((?P<deprecated>deprecated)|(?P<created>created)))(#(?P<counter>[0-9]+))?$"
)
# what a user may type to name a registered model version (GTO's shortcut, plus NAME@STAGE)
SHORTCUT_RE = re.compile(f"^(?P<name>{_NAME})(?P<sep>[@#])(?P<ref>{_NAME}|v{_SEMVER})$")

REGISTER, DEREGISTER, ASSIGN, UNASSIGN, DEPRECATE, CREATE = (
    "registration",
    "deregistration",
    "assignment",
    "unassignment",
    "deprecation",
    "creation",
)
TRAILER_VERSION = "git-model-version"
TRAILER_METRICS = "git-model-metrics"


def check_name(name: str, what: str = "model name") -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"{what} {name!r} cannot be a registry tag: use letters, digits, '-', '_' or '/', "
            "starting and ending with a letter or digit"
        )
    return name


# -- semantic versions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SemVer:
    text: str  # as written, with its leading "v"
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer:
        m = SEMVER_RE.fullmatch(text)
        if m is None:
            raise UsageError(f"{text!r} is not a version like v1.2.3 (semantic versioning)")
        pre = tuple(m["prerelease"].split(".")) if m["prerelease"] else ()
        return cls(text, int(m["major"]), int(m["minor"]), int(m["patch"]), pre)

    @staticmethod
    def is_valid(text: str) -> bool:
        return SEMVER_RE.fullmatch(text) is not None

    def key(self) -> tuple[Any, ...]:
        """Precedence (semver.org §11): a release sorts after its pre-releases; numeric
        identifiers sort numerically and before alphanumeric ones; build metadata is ignored."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def bump(self, part: str) -> SemVer:
        if part == "major":
            return SemVer.parse(f"v{self.major + 1}.0.0")
        if part == "minor":
            return SemVer.parse(f"v{self.major}.{self.minor + 1}.0")
        return SemVer.parse(f"v{self.major}.{self.minor}.{self.patch + 1}")

    def __str__(self) -> str:
        return self.text


FIRST_VERSION = {"patch": "v0.0.1", "minor": "v0.1.0", "major": "v1.0.0"}  # GTO starts at v0.0.1


# -- tag names -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagName:
    model: str
    action: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None


def parse_tag_name(tag: str) -> TagName | None:
    """Split a tag name the way GTO does; None for tags that are not registry tags."""
    m = TAG_RE.fullmatch(tag)
    if m is None:
        return None
    model = m["artifact"].replace("=", ":")
    counter = int(m["counter"]) if m["counter"] else None
    cancel = m["cancel"] == "!"
    if m["version"]:
        action = DEREGISTER if cancel else REGISTER
        return TagName(model, action, version=m["version"], counter=counter)
    if m["stage"]:
        return TagName(model, UNASSIGN if cancel else ASSIGN, stage=m["stage"], counter=counter)
    return TagName(model, DEPRECATE if m["deprecated"] else CREATE, counter=counter)


def register_tag(model: str, version: SemVer) -> str:
    return f"{model.replace(':', '=')}@{version}"


def stage_tag(model: str, stage: str, counter: int, *, unassign: bool = False) -> str:
    return f"{model.replace(':', '=')}#{stage}{'!' if unassign else ''}#{counter}"


def register_subject(model: str, version: str) -> str:
    return f"Registering artifact {model} version {version}"


def assign_subject(model: str, stage: str, version: str) -> str:
    return f"Assigning stage {stage} to artifact {model} version {version}"


def unassign_subject(model: str, stage: str, version: str) -> str:
    return f"Unassigning stage '{stage}' to artifact '{model}' version '{version}'"


# -- messages ------------------------------------------------------------------------------------


def tag_message(
    subject: str, version_hash: str | None, metrics: dict[str, Any] | None = None
) -> str:
    trailers = []
    if version_hash:
        trailers.append(f"{TRAILER_VERSION}: {version_hash}")
    if metrics:
        encoded = json.dumps(metrics, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        trailers.append(f"{TRAILER_METRICS}: {encoded}")
    body = subject.strip()
    return body + ("\n\n" + "\n".join(trailers) if trailers else "") + "\n"


def parse_trailers(message: str) -> tuple[str | None, dict[str, Any] | None]:
    """(version hash, metrics snapshot) from a tag message's last paragraph, if it has them."""
    last = message.strip().split("\n\n")[-1]
    version, metrics = None, None
    for line in last.splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == TRAILER_VERSION and re.fullmatch(r"[0-9a-f]{64}", value.strip()):
            version = value.strip()
        elif key == TRAILER_METRICS:
            try:
                decoded = json.loads(value)
            except ValueError:
                continue
            if isinstance(decoded, dict):
                metrics = decoded
    return version, metrics


def subject(message: str) -> str:
    return message.strip().split("\n\n")[0].strip()


# -- reading and writing tags --------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryTag:
    """One annotated registry tag, as git holds it."""

    tag: str
    name: TagName
    commit: str  # the commit it points at (peeled)
    time: int  # tagger time, seconds since the epoch
    author: str
    author_email: str
    message: str
    version_hash: str | None = None
    metrics: dict[str, Any] | None = field(default=None, compare=False)


_FIELDS = (
    "%(refname:strip=2)",
    "%(objecttype)",
    "%(*objecttype)",
    "%(*objectname)",
    "%(taggerdate:unix)",
    "%(taggername)",
    "%(taggeremail:trim)",
    "%(contents)",
)


def read_tags(repo: Repo) -> list[RegistryTag]:
    """Every annotated registry tag, in one `git for-each-ref` call.

    Lightweight tags and tags that do not point at a commit are skipped, as GTO skips them.
    """
    out = repo.git("for-each-ref", "--format=" + "%00".join(_FIELDS) + "%00", "refs/tags/")
    parts = out.decode("utf-8", errors="replace").split("\0")
    result = []
    n = len(_FIELDS)
    for i in range(0, len(parts) - n + 1, n):
        ref, otype, target_type, target, when, author, email, message = parts[i : i + n]
        parsed = parse_tag_name(ref.lstrip("\n"))
        if parsed is None or otype != "tag" or target_type != "commit" or not when.isdigit():
            continue
        version, metrics = parse_trailers(message)
        result.append(
            RegistryTag(
                ref.lstrip("\n"),
                parsed,
                target,
                int(when),
                author,
                email,
                message,
                version,
                metrics,
            )
        )
    return result


def create_tag(
    repo: Repo, tag: str, commit: str, message: str, *, not_before: int | None = None
) -> None:
    """Create an annotated tag; never move an existing one.

    GTO orders stage events by tag time, in whole seconds, so two stage tags made within one
    second could be read in either order. `not_before` dates the tag at least then (a second
    or so ahead at most), unless GIT_COMMITTER_DATE pins the date already. The date is always
    given to git: git reads the coarse clock, which for a few milliseconds after a second
    begins can still show the one before, so a tag left to git's clock just after
    `time.time()` passed `not_before` could get the previous tag's second (GTO then read the
    two in either order: a test saw it once).
    """
    if repo.git_ok("rev-parse", "--verify", "-q", f"refs/tags/{tag}"):
        raise UsageError(f"tag {tag} already exists; registry tags are never moved")
    env = None
    if not_before and "GIT_COMMITTER_DATE" not in os.environ:
        when = max(not_before, int(time.time()))
        env = {
            **os.environ,
            "GIT_COMMITTER_DATE": f"{when} {time.strftime('%z', time.localtime(when))}",
        }
    args = ["tag", "-a", "-F", "-", tag, commit]
    run_git(args, cwd=repo.root, input=message.encode("utf-8"), env=env)
