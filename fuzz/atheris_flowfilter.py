"""Coverage-guided fuzzing of the flow filter language (`interpose.flowfilter.parse`) with atheris.

    pip install atheris
    python fuzz/atheris_flowfilter.py                        # 60 s from sample expressions as seeds
    python fuzz/atheris_flowfilter.py -max_total_time=3600 CORPUS_DIR

The property: `parse` returns a predicate or raises FilterError (whose message is not empty), and a
predicate applied to flows of every kind (HTTP, failed, WebSocket, TCP) returns a bool without raising.
"""
from __future__ import annotations

import sys

import atheris
from _common import libfuzzer_args

with atheris.instrument_imports():
    from interpose.flowfilter import FilterError, parse

from tests.core.test_flowfile import every_kind

FLOWS = every_kind()
SEEDS = ["~u example", "~d example.com & ~m POST", "!(~c 200 | ~c 304)", "~h 'content-type: text/html'",
         "~bq foo | ~bs \"bar baz\"", "~websocket & ~e", "~tcp | ~http", "~t json", "~a & !~marked", "~q", "~all",
         "example.com/path", "~u /api/v[0-9]+ & ~hs set-cookie"]


def test_one_input(data: bytes) -> None:
    expr = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        pred = parse(expr)
    except FilterError as e:
        assert str(e), "FilterError without a message"
        return
    for flow in FLOWS:
        assert isinstance(pred(flow), bool)


def main() -> None:
    seeds = [b"\x00" + s.encode() for s in SEEDS]  # FuzzedDataProvider: first byte picks the string width
    atheris.Setup(libfuzzer_args(sys.argv, seeds, "flowfilter"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
