"""``python app.py`` options without a browser: login, a malformed login, the loopback default, several requests at
once (a slow one holds no other up) and the flags that set them."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.ui.harness import REPO, running_app

pytest.importorskip("gradio")


def test_malformed_login_is_refused_before_loading_the_model():
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "--auth", "nopassword"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert "user:password" in done.stderr


def test_unknown_precision_is_refused_before_loading_the_model():
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "--precision", "half"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert "--precision" in done.stderr and "'half'" in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--deadline", "0"], "--deadline 0: must be a positive"), (["--concurrency", "0"], "--concurrency 0: must be at least 1")],
)
def test_bad_request_limits_are_refused_before_loading_the_model(flags, message):
    done = subprocess.run([sys.executable, str(REPO / "app.py"), *flags], check=False, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert message in done.stderr


def _generate_inputs(client, n: int, **targets) -> list:
    """The /generate inputs at the page's defaults (n, seed, steps, repairs, guidance, predictor guidance, hard limits,
    must contain, must avoid, alerts, SA ceiling), then one target per property of the model's prior."""
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]
    names = [p["label"] for p in parameters[11:]]
    return [n, 0, 4, 0, 2.0, 0.0, False, "", "", False, "", *(targets.get(name, "") for name in names)]


def test_a_slow_request_holds_no_other_user_up_and_can_be_cancelled():
    from gradio_client import Client
    from gradio_client.utils import Status

    with running_app("--device", "cpu", "--concurrency", "2", "--max-n", "200") as url:
        slow_user, quick_user = (Client(url, verbose=False, httpx_kwargs={"timeout": 120}) for _ in range(2))
        # 200 molecules toward a target: tens of candidates drawn per molecule, hundreds of times the quick request's work
        slow = slow_user.submit(*_generate_inputs(slow_user, 200, QED="0.9"), api_name="/generate")
        while slow.status().code not in (Status.PROCESSING, Status.PROGRESS, Status.LOG):
            assert not slow.done(), "the slow request ended before it was seen running"
            time.sleep(0.1)
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            assert response.status == 200
        summary, *_ = quick_user.predict(*_generate_inputs(quick_user, 1), api_name="/generate")
        assert summary.startswith("**1 molecules")
        assert not slow.done(), "the quick request waited for the slow one"
        slow.cancel()  # what the page's Cancel button does: the request stops at its next batch
        summary, *_ = quick_user.predict(*_generate_inputs(quick_user, 2), api_name="/generate")
        assert summary.startswith("**2 molecules")


def test_login_is_required_when_asked_and_loopback_by_default():
    from gradio_client import Client

    with running_app("--auth", "chemist:secret", "--device", "cpu") as url:
        assert url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "config", timeout=10)
        assert denied.value.code == 401
        client = Client(url, auth=("chemist", "secret"), verbose=False, httpx_kwargs={"timeout": 120})  # a busy CI machine
        inputs = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]
        targets = [""] * (len(inputs) - 11)  # one per property of the model's prior, after the eleven fixed fields
        summary, *_ = client.predict(2, 0, 4, 0, 2.0, 0.0, False, "", "", False, None, *targets, api_name="/generate")
        assert summary.startswith("**2 molecules")
