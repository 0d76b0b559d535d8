"""Shared by the atheris harnesses: the repository on sys.path, default libFuzzer arguments, seed corpora."""
from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def libfuzzer_args(argv: list[str], seeds: list[bytes], name: str) -> list[str]:
    """argv for atheris.Setup: a 60 s run unless -runs/-max_total_time is given, and a corpus directory
    (the one given, or a temporary one holding `seeds`)."""
    args = list(argv)
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in args[1:]):
        args.append("-max_total_time=60")
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = tempfile.mkdtemp(prefix=f"interpose-{name}-corpus-")
        for i, seed in enumerate(seeds):
            with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
                f.write(seed)
        args.append(corpus)
    return args
