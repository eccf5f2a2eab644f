"""``python app.py`` options without a browser: login, a malformed login, the loopback default."""

from __future__ import annotations

import subprocess
import sys
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
