"""A first end-to-end check: curl through the proxy to a local origin."""
from tests.conftest import Recorder, curl


async def test_get_through_proxy(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/hello")
    assert code == 0, err
    assert out == b"ok /hello"
    await rec.wait_for("clientdisconnect")
    traffic = [n for n in rec.names if n not in ("load", "start", "configure", "tick", "log")]
    assert traffic[:7] == ["clientconnect", "next_layer", "requestheaders", "request", "serverconnect",
                             "responseheaders", "response"]
