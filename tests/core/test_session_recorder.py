"""The session recorder (core/runtime/builtins/session.py) with a real session file: a flow deleted while it
was still going is not brought back by its last hook; one loaded again later is."""
from __future__ import annotations

import asyncio

from interpose.runtime.builtins.session import SessionRecorder
from interpose.runtime.bus import EventBus
from interpose.runtime.options import Options, core_options
from interpose.store.session import Session
from tests.core.test_flowfile import make_http_flow


async def test_a_flow_deleted_before_its_response_stays_deleted(tmp_path):
    path = str(tmp_path / "s.session")
    opts = Options()
    core_options(opts)
    rec = SessionRecorder(EventBus(), lambda msg, level: None)
    opts.update(session=path)
    rec.configure(opts, {"session"})
    done, going = make_http_flow(), make_http_flow()
    going.response, going.error = None, None
    going.live = True
    rec.response(done)
    rec.delete([going])  # the user deletes it while it waits for its response
    going.response = done.response
    rec.response(going)  # ... which then arrives: its hook fires as usual
    await asyncio.sleep(0)  # the loop's next turn, where finished flows are recorded
    rec.record(going)  # the user loads it again: it comes back
    rec.delete([done])
    rec.done()
    s = Session.open(path, readonly=True)
    try:
        assert [f.id for f in s.flows()] == [going.id]
    finally:
        s.close()


async def test_a_late_hook_does_not_bring_a_deleted_flow_back(tmp_path):
    path = str(tmp_path / "s.session")
    opts = Options()
    core_options(opts)
    rec = SessionRecorder(EventBus(), lambda msg, level: None)
    opts.update(session=path)
    rec.configure(opts, {"session"})
    going = make_http_flow()
    going.response, going.error = None, None
    going.live = True
    rec.delete([going])
    going.response = make_http_flow().response
    rec.response(going)
    await asyncio.sleep(0)
    rec.done()
    s = Session.open(path, readonly=True)
    try:
        assert list(s.flows()) == []
    finally:
        s.close()


async def test_what_an_async_hook_after_the_recorder_adds_to_metadata_is_recorded(tmp_path):
    from interpose.runtime.master import Master

    path = str(tmp_path / "s.session")
    opts = Options()
    core_options(opts)
    opts.update(listen_port=0, confdir=str(tmp_path / "conf"), session=path)
    master = Master(opts)
    entered, release = asyncio.Event(), asyncio.Event()

    class Lookup:  # an addon after the recorder whose response hook waits on something before annotating
        async def response(self, flow):
            entered.set()
            await release.wait()
            flow.metadata["looked_up"] = "yes"

    master.add_addon(Lookup())
    await master.start(listen=False)
    flow = make_http_flow()
    flow.metadata = {}
    loading = asyncio.create_task(master.load_flows([flow]))
    await entered.wait()
    for _ in range(3):  # turns of the loop while the hook waits: the flow must not be recorded without it
        await asyncio.sleep(0)
    release.set()
    assert await loading == 1
    await master.shutdown()
    s = Session.open(path, readonly=True)
    try:
        (got,) = list(s.flows())
        assert got.metadata.get("looked_up") == "yes"
    finally:
        s.close()
