"""``flareflow serve`` accepts control only from its operator (issue 12, F4).

One ``flareflow serve --only backfill`` on an empty store (credentials generated into
``<store>/api_auth``) is shared by the module: unauthenticated calls get 401, other origins
get no CORS grant, parameters that would point a run at another store, model or Dask
scheduler are rejected before a run exists, and every socket the serving processes listen on
is on 127.0.0.1. The Dask cluster of a backfill serves no HTTP routes and no dashboard.
"""

from __future__ import annotations

import stat

import httpx
import psutil
import pytest

from deployments.server import load_api_auth
from tests.flows.test_deployments import start_serve, stop_serve, wait_deployments

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-security")
    s = start_serve(tmp / "store", tmp, "--only", "backfill", auth=None)
    try:
        (dep,) = wait_deployments(s, 1)
        yield s, dep
    finally:
        stop_serve(s)


def _create_run(served, dep: dict, parameters: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{served.api}/deployments/{dep['id']}/create_flow_run",
                      json={"parameters": parameters}, timeout=10, **kwargs)


def _flow_runs(served) -> list:
    r = httpx.post(f"{served.api}/flow_runs/filter", json={}, headers=served.headers(),
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_generated_credentials_are_private_and_reused(served):
    s, _ = served
    path = s.root / "api_auth"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user, password = path.read_text().strip().split(":", 1)
    assert user == "flareflow" and len(password) >= 24
    assert load_api_auth(s.root) == f"{user}:{password}"  # reused, not regenerated


def test_api_auth_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAREFLOW_API_AUTH", "ops:pw")
    assert load_api_auth(tmp_path) == "ops:pw"
    assert not (tmp_path / "api_auth").exists()


def test_unauthenticated_control_is_refused(served):
    s, dep = served
    params = {"start": "2014-10-22T00:00", "end": "2014-10-22T01:00"}
    assert _create_run(s, dep, params, headers={"Origin": EVIL}).status_code == 401
    assert _create_run(s, dep, params, headers=s.headers("flareflow:guess")).status_code == 401
    r = httpx.post(f"{s.api}/deployments/filter", json={}, timeout=10)
    assert r.status_code == 401
    assert httpx.get(f"{s.api}/health", timeout=10).status_code == 200  # probes stay open
    assert _flow_runs(s) == []


def test_other_origins_get_no_cors_grant(served):
    s, dep = served
    own = f"http://127.0.0.1:{s.port}"
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization,content-type"}
    evil = httpx.options(f"{s.api}/deployments/{dep['id']}/create_flow_run",
                         headers={"Origin": EVIL, **pre}, timeout=10)
    assert evil.headers.get("access-control-allow-origin") not in (EVIL, "*"), evil.headers
    r = httpx.post(f"{s.api}/deployments/filter", json={},
                   headers={"Origin": EVIL, **s.headers()}, timeout=10)
    assert r.headers.get("access-control-allow-origin") not in (EVIL, "*"), r.headers
    mine = httpx.options(f"{s.api}/deployments/filter", headers={"Origin": own, **pre},
                         timeout=10)
    assert mine.headers.get("access-control-allow-origin") == own, mine.headers


@pytest.mark.parametrize("extra", [
    {"dask_address": "tcp://127.0.0.1:1"},
    {"store": "/tmp/elsewhere"},
    {"model_dir": "/tmp/elsewhere/model"},
    {"model_dir": "MODELS/../../etc"},
    {"not_a_parameter": 1},
], ids=["dask_address", "store", "model_dir-outside", "model_dir-dotdot", "unknown"])
def test_parameters_outside_the_allow_list_are_rejected(served, extra):
    s, dep = served
    extra = {k: (v.replace("MODELS", str(s.root.resolve() / "models"))
                 if isinstance(v, str) else v) for k, v in extra.items()}
    params = {"start": "2014-10-22T00:00", "end": "2014-10-22T01:00", **extra}
    r = _create_run(s, dep, params, headers=s.headers())
    assert r.status_code == 409, (r.status_code, r.text)
    assert "Validation failed" in r.text
    assert _flow_runs(s) == []


def test_served_schema_has_no_server_only_parameters(served):
    _, dep = served
    props = dep["parameter_openapi_schema"]["properties"]
    assert not {"dask_address", "jsoc_url", "hek_url"} & set(props)
    assert dep["parameter_openapi_schema"]["additionalProperties"] is False
    assert props["store"]["enum"] == [dep["parameters"]["store"]]
    assert dep["enforce_parameter_schema"] is True


def test_only_loopback_ports_listen(served):
    s, _ = served
    listening = set()
    for p in s.tree():
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                listening.add((c.laddr.ip, c.laddr.port))
    assert ("127.0.0.1", s.port) in listening, listening
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_backfill_cluster_serves_no_dashboard():
    from distributed import LocalCluster

    from flows.backfill import dask_runner

    kwargs = dict(dask_runner(n_workers=1, processes=False).cluster_kwargs)
    with LocalCluster(**kwargs) as cluster:
        sched = cluster.scheduler
        ports = [s.getsockname() for s in sched.http_server._sockets.values()]
        assert ports and all(ip == "127.0.0.1" and port != 8787 for ip, port, *_ in ports)
        url = f"http://127.0.0.1:{ports[0][1]}"
        # the Bokeh pages (/status) and every route distributed would add are absent
        for path in ("/status", "/health", "/metrics", "/json/identity.json", "/proxy/1/x"):
            assert httpx.get(url + path, timeout=10).status_code == 404, path
