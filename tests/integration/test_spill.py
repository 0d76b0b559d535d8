"""Bodies of the flows the TUI keeps are spilled to disk, for real: a proxy on port 0, the TUI's `App`
consuming its bus (no terminal), curl uploading and downloading 1 MiB through it."""
from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest

from interpose.store.flowfile import FlowWriter, load
from interpose.store.spill import is_spilled
from interpose.tui.app import App
from tests.conftest import curl

MiB = 1 << 20


async def kept_and_spilled(app: App, flows: int, spilled: int, timeout: float = 10) -> list:
    """Wait (polling, as the UI's consumer task works on its own) until the TUI keeps `flows` flows
    and has spilled `spilled` bodies."""
    async with asyncio.timeout(timeout):
        while app.store.total < flows or app.spill.spilled_count < spilled:
            await asyncio.sleep(0.02)
    return list(app.store.all_flows())


async def test_kept_bodies_are_spilled_and_read_back(make_proxy, origin, tmp_path: Path):
    proxy = await make_proxy(body_spill_threshold="64k")
    app = App(proxy.master)
    app.spawn(app.consume())
    await asyncio.sleep(0)  # the consumer subscribes to the bus
    upload = os.urandom(MiB)
    (tmp_path / "upload").write_bytes(upload)
    try:
        code, out, err = await curl("-x", proxy.url, "--data-binary", f"@{tmp_path / 'upload'}",
                                    "-H", "Content-Type: application/octet-stream", f"{origin.url}/sink")
        assert code == 0, err
        assert out == str(MiB).encode()
        code, download, err = await curl("-x", proxy.url, f"{origin.url}/bytes/{MiB}")
        assert code == 0, err
        assert len(download) == MiB

        up, down = sorted(await kept_and_spilled(app, 2, 2), key=lambda f: f.request.method != "POST")
        assert is_spilled(up.request) and "raw_content" not in vars(up.request)
        assert not is_spilled(up.response)  # "1048576": small
        assert is_spilled(down.response) and "raw_content" not in vars(down.response)
        assert app.spill.spilled_count == 2 and app.spill.spilled_bytes == 2 * MiB
        assert os.path.getsize(app.spill.file.path) == 2 * MiB
        assert up.request.content == upload and up.request.raw_content == upload
        assert down.response.content == download

        path = tmp_path / "flows"
        with FlowWriter(path) as w:
            for f in app.store.all_flows():
                w.add(f)
        loaded, _ = load(path)
        by_method = {f.request.method: f for f in loaded}
        assert by_method["POST"].request.raw_content == upload
        assert by_method["GET"].response.raw_content == download
        spill_dir = app.spill.file.dir
    finally:
        for t in list(app.tasks):
            t.cancel()
        app.spill.close()
    assert not os.path.exists(spill_dir)


async def test_disk_space_of_deleted_flows_is_given_back(make_proxy, origin):
    """Deleting a flow whose body is spilled gives its disk space back at once (punched out of the file),
    and once no spilled body is left the file is emptied, not only at exit."""
    proxy = await make_proxy(body_spill_threshold="64k")
    app = App(proxy.master)
    app.spawn(app.consume())
    await asyncio.sleep(0)  # the consumer subscribes to the bus
    try:
        for i in range(2):
            code, download, err = await curl("-x", proxy.url, f"{origin.url}/bytes/{MiB + i}")
            assert code == 0 and len(download) == MiB + i, err
        first, second = sorted(await kept_and_spilled(app, 2, 2), key=lambda f: len(f.response.content))
        path = app.spill.file.path

        def allocated() -> int:
            return os.stat(path).st_blocks * 512

        assert allocated() >= 2 * MiB
        app.store.remove(first)
        del first
        gc.collect()
        assert app.spill.file.live == MiB + 1
        if allocated() > MiB + 64 * 1024:  # where the file system cannot punch holes, only the count shows it
            pytest.skip(f"the file system under {path} does not punch holes")
        assert len(second.response.content) == MiB + 1  # the other body is still there
        app.store.remove(second)
        del second
        gc.collect()
        assert app.spill.file.live == 0 and os.path.getsize(path) == 0
    finally:
        for t in list(app.tasks):
            t.cancel()
        app.spill.close()
