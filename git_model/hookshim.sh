#!/bin/sh
# git-model hook shim: installed by 'git model init', removed by 'git model uninstall'.
#
# One text serves every hook: it knows which one it is from its own file name, and hands the
# work to 'git-model hook NAME ARGS...'. A hook that was here before git-model is kept beside
# this one as NAME.pre-git-model and runs first, with the same arguments and input; when it
# fails, a hook that can stop git (pre-*) stops it.
#
# If git-model is not installed, the hooks that guard what enters git (pre-commit,
# pre-merge-commit, pre-push) stop with a message saying how to install it or skip the hook
# once; the others only warn, since git has already done its work by then.
#
# post-commit usually needs no Python: pre-commit leaves the new commit's note ready in the git
# dir, named after the git process that runs both hooks, and one 'git notes add' writes it.

name=${0##*/}
status=0
GIT_MODEL_GIT_PID=$PPID  # the git process that runs this hook: pairs pre- and post-commit
export GIT_MODEL_GIT_PID

if [ -x "$0.pre-git-model" ]; then
    case $name in
    pre-push | post-rewrite)
        # both hooks read their input from stdin: each gets its own copy
        copy=$(mktemp "${TMPDIR:-/tmp}/git-model-hook.XXXXXX") || exit 1
        cat >"$copy"
        "$0.pre-git-model" "$@" <"$copy" || status=$?
        exec <"$copy"
        rm -f "$copy"
        ;;
    *)
        "$0.pre-git-model" "$@" || status=$?
        ;;
    esac
    case $name in
    pre-*) [ "$status" -eq 0 ] || exit "$status" ;;
    esac
fi

if [ "$name" = post-commit ]; then
    # pre-commit left this commit's note ready (empty: nothing to do), so no Python is needed
    ready="${GIT_DIR:-.git}/model/post-commit-$PPID.note"
    if [ -f "$ready" ]; then
        if [ ! -s "$ready" ] || git notes --ref=refs/notes/model add -F "$ready" HEAD 2>/dev/null; then
            rm -f "$ready"
            exit "$status"
        fi
    fi
fi

if ! command -v git-model >/dev/null 2>&1; then
    case $name in
    pre-*)
        echo "git-model is not installed, but this repository's $name hook needs it:" \
            "install it (from a clone of git-model: pipx install ./git-model; see its README)," \
            "or skip the hook once with --no-verify" >&2
        exit 1
        ;;
    *)
        echo "git-model is not installed: the $name hook did not update artifacts;" \
            "install it (see git-model's README), then run 'git model checkout'" >&2
        exit "$status"
        ;;
    esac
fi

[ "$status" -eq 0 ] && exec git-model hook "$name" "$@"
git-model hook "$name" "$@"
exit "$status"
