"""How long the flow view's content views take on a large body (the time a user waits after opening it).

    python bench/contentview_bench.py              # 5 MiB of JSON: by content type and sniffed; 5 runs each
    python bench/contentview_bench.py --mib 20     # another size

The body is minified JSON (a list of small objects with nested objects, unicode and floats), the shape
of an API response. Prints the median and the worst of the runs per way of picking the view.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from interpose.tui.contentviews import render


def body_of(mib: float) -> bytes:
    rnd = random.Random(7)
    items = [{"id": i, "user": {"name": f"user {i} ü", "email": f"u{i}@example.com", "roles": ["a", "b"]},
              "score": rnd.random() * 100, "active": i % 3 == 0, "note": None, "tags": [], "geo": [52.52, 13.40]}
             for i in range(1000)]
    chunk = json.dumps(items, ensure_ascii=False)[1:-1]
    return ("[" + ", ".join([chunk] * (int(mib * 1024 * 1024) // len(chunk) + 1)) + "]").encode()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    body = body_of(args.mib)
    for ctype in ("application/json", ""):
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            r = render(body, ctype)
            times.append(time.perf_counter() - t0)
        print(f"{len(body) / 2**20:.1f} MiB JSON, {'by content type' if ctype else 'sniffed'}: view {r.view}, "
              f"{len(r.lines)} lines, median {statistics.median(times):.2f} s, worst {max(times):.2f} s")


if __name__ == "__main__":
    main()
