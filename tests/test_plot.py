"""`git model log --plot`: a metric across model versions, in the terminal and in a file."""

from __future__ import annotations

from conftest import Shell


def three_versions(repo: Shell) -> None:
    for i, acc in enumerate(("0.80", "0.85", "0.91")):
        repo.write("m.bin", f"weights {i}")
        repo.model("add", "m.bin", "--model", "m")
        repo.git("commit", "-q", "-m", f"v{i}")
        repo.model("metrics", "set", f"accuracy={acc}", "--model", "m")


def test_plot_in_the_terminal_and_to_files(repo: Shell) -> None:
    three_versions(repo)
    out = repo.model("log", "m", "--plot", "accuracy").stdout.splitlines()
    assert out[0] == "m: accuracy by version (oldest first)"
    bars = [line.count("█") for line in out[1:]]
    assert len(bars) == 3 and bars[0] < bars[1] < bars[2]
    assert [line.split()[2] for line in out[1:]] == ["0.8", "0.85", "0.91"]

    repo.model("log", "m", "--plot", "accuracy", "-o", "acc.png")
    assert repo.read("acc.png").startswith(b"\x89PNG\r\n\x1a\n")
    repo.model("log", "m", "--plot", "accuracy", "-o", "acc.html")
    page = repo.read("acc.html").decode()
    assert "<svg" in page and page.count("<tr>") == 4 and "0.91" in page


def test_plot_errors_say_what_to_do(repo: Shell) -> None:
    three_versions(repo)
    out = repo.model("log", "m", "--plot", "f1", check=False)
    assert out.returncode == 1 and "metrics: accuracy" in out.stderr
    out = repo.model("log", "m", "--plot", "accuracy", "-o", "chart.jpg", check=False)
    assert out.returncode == 2 and ".png" in out.stderr
