"""`rnnkit serve` as a user runs it: a real server process on a free loopback port with six tiny trained runs, hit
over HTTP. Covers every endpoint's contract, the 4xx answers to client mistakes, concurrent requests, the
playground in headless Chromium (with a screenshot) and a one-second run of benchmarks/load_test.py."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")

SPAM = "Free entry in a weekly competition to win FA Cup final tkts. Text FA to 87121 to receive entry!"
LIMITS = {"--max-input-length": 400, "--max-new-tokens": 40, "--max-batch": 8, "--max-horizon": 48}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=60, **kw)


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    runs = {
        "lm": "lm",
        "spam": "text-classify",
        "digits": "sequence-classify",
        "airline": "forecast",
        "spa": "translate",
        "chat": "chat",
    }
    specs = [f"{name}={tiny_run(kind)}" for name, kind in runs.items()]
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    limits = [str(x) for kv in LIMITS.items() for x in kv]
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnnkit", "serve", *specs, "--port", str(port), "--log-level", "warning", *limits],
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # seconds on a loaded machine; about 5 on an idle one
    while True:
        if proc.poll() is not None:
            pytest.fail(f"rnnkit serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"rnnkit serve did not answer /healthz within 300 s:\n{log.read_text()}")
        time.sleep(0.2)
    yield Server(url, proc, log)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    text = log.read_text()
    assert "Traceback" not in text, f"the server logged an internal error:\n{text}"  # no 500 was ever served


# -- the contract ---------------------------------------------------------------------------------------------------
def test_health_models_and_openapi(server):
    assert server.proc.poll() is None
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "models": 6}
    models = {m["name"]: m for m in httpx.get(server.url + "/v1/models").json()["models"]}
    assert {n: m["endpoints"] for n, m in models.items()} == {
        "lm": ["generate"],
        "spam": ["classify"],
        "digits": ["classify"],
        "airline": ["forecast"],
        "spa": ["translate"],
        "chat": ["chat"],
    }
    assert models["spam"]["info"]["labels"] == ["ham", "spam"] and models["digits"]["info"]["input"] == "sequence"
    assert models["airline"]["info"]["columns"] == ["Passengers"]
    spec = httpx.get(server.url + "/openapi.json").json()
    for ep in ("generate", "translate", "chat", "classify", "forecast"):
        assert f"/v1/{ep}" in spec["paths"]
    gen = spec["components"]["schemas"]["GenerateRequest"]["properties"]
    assert gen["max_new_tokens"]["maximum"] == 40 and gen["prompt"]["maxLength"] == 400  # the server's limits


def test_generate_is_reproducible_with_a_seed(server):
    body = {"prompt": "the company said", "max_new_tokens": 12, "temperature": 0.8, "top_k": 40, "seed": 7}
    a, b = server.post("/v1/generate", body), server.post("/v1/generate", body)
    assert a.status_code == 200, a.text
    assert a.json() == b.json() and a.json()["model"] == "lm" and a.json()["prompt"] == "the company said"
    words = a.json()["text"].split()
    assert 1 <= len(words) <= 12
    greedy = server.post("/v1/generate", {"prompt": "the company", "max_new_tokens": 5, "temperature": 0})
    assert greedy.status_code == 200 and isinstance(greedy.json()["text"], str)  # a tiny model may say only <eos>


def test_generation_defaults_are_pythons(server, tiny_run):
    """One vocabulary, one default: a request that leaves max_new_tokens out gets Run.generate's (and the CLI's)
    default - here capped by this server's --max-new-tokens 40 - and a bad value is still a JSON 422."""
    import inspect

    import rnnkit
    from rnnkit.config import DEFAULT_NEW_TOKENS

    assert inspect.signature(rnnkit.Run.generate).parameters["max_new_tokens"].default == DEFAULT_NEW_TOKENS
    spec = httpx.get(server.url + "/openapi.json").json()["components"]["schemas"]
    assert spec["GenerateRequest"]["properties"]["max_new_tokens"]["default"] == min(DEFAULT_NEW_TOKENS, 40)
    assert "max_new_tokens" not in spec["GenerateRequest"].get("required", [])
    body = {"prompt": "the company", "temperature": 0.8, "seed": 3}
    left_out = server.post("/v1/generate", body)
    assert left_out.status_code == 200, left_out.text
    assert left_out.json() == server.post("/v1/generate", {**body, "max_new_tokens": 40}).json()
    for bad in (0, "5", None, 41):
        r = server.post("/v1/generate", {**body, "max_new_tokens": bad})
        assert r.status_code == 422 and r.headers["content-type"] == "application/json", (bad, r.text)
        assert r.json()["errors"][0]["loc"] == ["max_new_tokens"] or "max_new_tokens" in r.json()["detail"]
    # translate and chat take the options Run.translate and Run.chat take, with their defaults (the run's)
    python = {
        ep: set(inspect.signature(getattr(rnnkit.Run, ep)).parameters) - {"self", "max_input_length"}
        for ep in ("translate", "chat")
    }
    assert python["translate"] - {"texts", "details", "max_length"} <= set(spec["TranslateRequest"]["properties"])
    assert python["chat"] - {"max_words"} <= set(spec["ChatRequest"]["properties"])
    for name in ("TranslateRequest", "ChatRequest"):
        assert spec[name]["required"] == ["text"], name
    spa = rnnkit.load(tiny_run("translate"))
    for alpha in (0.0, 2.0):
        r = server.post("/v1/translate", {"text": "Como te llamas?", "beam": 3, "length_penalty": alpha})
        assert r.status_code == 200, r.text
        assert r.json()["translation"] == spa.translate("Como te llamas?", beam=3, length_penalty=alpha)
    assert server.post("/v1/translate", {"text": "hola", "length_penalty": -1.0}).status_code == 422


def test_translate_returns_the_attention_matrix(server):
    r = server.post("/v1/translate", {"text": "Como te llamas?", "beam": 1})
    assert r.status_code == 200, r.text
    out = r.json()
    att = out["attention"]
    assert len(att) == len(out["target_tokens"]) and all(len(row) == len(out["source_tokens"]) for row in att)
    assert all(abs(sum(row) - 1) < 1e-3 for row in att)
    assert out["source_tokens"][:3] == ["como", "te", "llamas"]


def test_chat_gives_the_replies_asked_for(server):
    r = server.post("/v1/chat", {"text": "how are you?", "replies": 3, "seed": 1, "history": ["hello", "hi"]})
    assert r.status_code == 200, r.text
    assert len(r.json()["replies"]) == 3 and all(isinstance(x, str) for x in r.json()["replies"])


def test_classify_text_batch_and_sequence(server):
    one = server.post("/v1/classify", {"model": "spam", "text": SPAM}).json()
    assert one["label"] in ("ham", "spam") and abs(sum(one["probabilities"].values()) - 1) < 1e-5
    assert one["probability"] == max(one["probabilities"].values())
    batch = server.post("/v1/classify", {"model": "spam", "texts": [SPAM, "see you at home"]}).json()
    assert len(batch["results"]) == 2 and batch["results"][0]["probabilities"] == pytest.approx(one["probabilities"])
    digits = server.post("/v1/classify", {"model": "digits", "sequence": [float(i % 16) for i in range(64)]})
    assert digits.status_code == 200, digits.text
    assert digits.json()["label"] in [str(k) for k in range(10)]


def test_forecast_continues_the_runs_series_or_a_given_history(server):
    own = server.post("/v1/forecast", {"horizon": 6}).json()
    assert own["times"] == ["1961-01", "1961-02", "1961-03", "1961-04", "1961-05", "1961-06"]
    assert len(own["forecast"]) == 6 and all(
        lo <= f <= hi for lo, f, hi in zip(own["lower"], own["forecast"], own["upper"])
    )
    assert own["history"][-1] == 432.0 and own["history_times"][-1] == "1960-12"  # airline's last month
    given = server.post("/v1/forecast", {"history": [100.0 + i for i in range(30)], "horizon": 3, "level": 0.5})
    assert given.status_code == 200, given.text
    assert given.json()["times"] == ["30", "31", "32"] and given.json()["interval"] == 0.5


# -- client mistakes --------------------------------------------------------------------------------------------------
MISTAKES = [  # (what, method, path, json body or raw bytes, expected status)
    ("malformed JSON", "POST", "/v1/generate", b'{"prompt": "the",', 422),
    ("not JSON", "POST", "/v1/classify", b"hello", 422),
    ("invalid UTF-8", "POST", "/v1/generate", b'{"prompt": "\xff\xfe"}', 422),
    ("deeply nested JSON", "POST", "/v1/generate", b"[" * 50_000 + b"]" * 50_000, 422),
    ("a string for an integer", "POST", "/v1/generate", {"prompt": "the", "max_new_tokens": "5"}, 422),
    ("a float for an integer", "POST", "/v1/generate", {"prompt": "the", "max_new_tokens": 5.0}, 422),
    ("a boolean for a number", "POST", "/v1/generate", {"prompt": "a", "max_new_tokens": 2, "temperature": True}, 422),
    ("a string for a number", "POST", "/v1/forecast", {"horizon": 3, "level": "0.9"}, 422),
    ("missing field", "POST", "/v1/translate", {}, 422),
    ("wrong type", "POST", "/v1/generate", {"prompt": 3}, 422),
    ("misspelt option", "POST", "/v1/generate", {"prompt": "the", "max_tokens": 3}, 422),
    ("zero tokens", "POST", "/v1/generate", {"prompt": "the", "max_new_tokens": 0}, 422),
    ("tokens over the limit", "POST", "/v1/generate", {"prompt": "the", "max_new_tokens": 41}, 422),
    ("NaN", "POST", "/v1/generate", b'{"prompt": "the", "max_new_tokens": 2, "temperature": NaN}', 422),
    ("lone surrogate", "POST", "/v1/generate", b'{"prompt": "the \\ud800", "max_new_tokens": 2}', 422),
    ("prompt too long", "POST", "/v1/generate", {"prompt": "the " * 150, "max_new_tokens": 2}, 413),
    ("body too large", "POST", "/v1/generate", b'{"prompt": "' + b"a" * 1_500_000 + b'"}', 413),
    ("unknown model", "POST", "/v1/generate", {"model": "gpt", "prompt": "the", "max_new_tokens": 2}, 404),
    ("model of another kind", "POST", "/v1/generate", {"model": "spam", "prompt": "the", "max_new_tokens": 2}, 400),
    ("two classifiers, none named", "POST", "/v1/classify", {"text": "hi"}, 400),
    ("only unknown words", "POST", "/v1/generate", {"prompt": "zzqx qqzx", "max_new_tokens": 2}, 422),
    ("text and texts", "POST", "/v1/classify", {"model": "spam", "text": "a", "texts": ["b"]}, 422),
    ("sequence to a text model", "POST", "/v1/classify", {"model": "spam", "sequence": [1.0, 2.0]}, 422),
    ("sequence of the wrong size", "POST", "/v1/classify", {"model": "digits", "sequence": [1.0, 2.0]}, 422),
    ("too many texts", "POST", "/v1/classify", {"model": "spam", "texts": ["a"] * 9}, 413),
    ("history too short", "POST", "/v1/forecast", {"history": [1.0, 2.0, 3.0]}, 422),
    ("ragged history", "POST", "/v1/forecast", {"history": [[1.0, 2.0], [3.0]]}, 422),
    ("horizon over the limit", "POST", "/v1/forecast", {"horizon": 49}, 422),
    ("empty chat message", "POST", "/v1/chat", {"text": "   "}, 422),
    ("empty text to classify", "POST", "/v1/classify", {"model": "spam", "text": ""}, 422),
    ("whitespace to classify", "POST", "/v1/classify", {"model": "spam", "text": " \t\n "}, 422),
    ("an empty text in a batch", "POST", "/v1/classify", {"model": "spam", "texts": ["hello", " "]}, 422),
    ("empty text to translate", "POST", "/v1/translate", {"text": " "}, 422),
    ("text to translate too long", "POST", "/v1/translate", {"text": "hola " * 100}, 413),
    ("text to classify too long", "POST", "/v1/classify", {"model": "spam", "texts": ["hi", "win " * 101]}, 413),
    ("beam of zero", "POST", "/v1/translate", {"text": "hola", "beam": 0}, 422),
    ("GET on a POST route", "GET", "/v1/generate", None, 405),
    ("unknown path", "GET", "/v2/everything", None, 404),
]


@pytest.mark.parametrize("what,method,path,body,status", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_client_mistakes_get_a_4xx_with_a_message(server, what, method, path, body, status):
    if isinstance(body, bytes):
        r = httpx.request(method, server.url + path, content=body, headers={"content-type": "application/json"})
    else:
        r = httpx.request(method, server.url + path, json=body)
    assert r.status_code == status, (what, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()  # the one error shape, whatever went wrong
    assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str) and body["detail"], r.text
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"]), r.text


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3", b"10, 20"])
def test_a_content_length_that_does_not_frame_the_body_is_a_json_422(server, length):
    """Refused by the HTTP parser before the app sees it (uvicorn answered a plain-text 400), or by the app."""
    host, port = server.url.removeprefix("http://").split(":")
    body = b'{"prompt": "the", "max_new_tokens": 2}'
    request = (
        b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: "
    )
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request + length + b"\r\n\r\n" + body)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422"), raw[:300]
    assert b"application/json" in head.lower(), head
    answer = json.loads(payload)
    assert set(answer) == {"detail", "errors"} and answer["detail"], answer


def test_error_messages_say_what_to_change(server):
    assert (
        "unknown model 'gpt'; loaded: lm, spam, digits"
        in server.post("/v1/generate", {"model": "gpt", "prompt": "x", "max_new_tokens": 1}).json()["detail"]
    )
    assert "--max-new-tokens" in server.post("/v1/generate", {"prompt": "the", "max_new_tokens": 41}).json()["detail"]
    assert (
        "unknown to this model's vocabulary"
        in server.post("/v1/generate", {"prompt": "zzqx", "max_new_tokens": 3}).json()["detail"]
    )
    assert server.post("/v1/generate", {"prompt": "the", "max_new_tokens": None}).json()["detail"] == (
        "max_new_tokens: Input should be a valid integer"
    )
    assert 'name one with "model"' in server.post("/v1/classify", {"text": "hi"}).json()["detail"]
    assert "64 numbers" in server.post("/v1/classify", {"model": "digits", "sequence": [1.0]}).json()["detail"]
    assert "data.lookback=24" in server.post("/v1/forecast", {"history": [1.0]}).json()["detail"]
    # the checks of the CLI verbs, word for word (rnnkit.predict)
    assert (
        server.post("/v1/classify", {"model": "spam", "texts": ["hello", " "]}).json()["detail"]
        == "texts[1]: nothing to classify (the text is empty)"
    )
    assert (
        server.post("/v1/translate", {"text": "hola " * 100}).json()["detail"]
        == "text is 500 characters; the limit is 400 (rnnkit serve --max-input-length)"
    )
    r = server.post("/v1/generate", {"prompt": 3})
    assert r.json()["detail"].startswith("prompt: ") and r.json()["errors"][0]["loc"] == ["prompt"]


# -- concurrency ----------------------------------------------------------------------------------------------------
def test_concurrent_requests_get_the_same_answers_as_sequential_ones(server):
    texts = [SPAM, "see you at home tonight", "URGENT you have won a prize call now", "ok"] * 4
    jobs: list[tuple[str, dict[str, Any]]] = [("/v1/classify", {"model": "spam", "text": t}) for t in texts]
    jobs += [("/v1/generate", {"prompt": "the market", "max_new_tokens": 6, "seed": k}) for k in range(6)]
    jobs += [("/v1/forecast", {"horizon": 4})] * 2
    sequential = [server.post(p, b).json() for p, b in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        responses = list(pool.map(lambda job: server.post(*job), jobs))
    assert [r.status_code for r in responses] == [200] * len(jobs)
    for want, got in zip(sequential, (r.json() for r in responses)):
        if "probabilities" in want:  # batched with padding: equal up to float rounding
            assert got["label"] == want["label"]
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
        else:
            assert got == want


# -- the playground in a real browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium (scripts/provision.sh installs it; tests never install anything)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'rnnkit[dev]'")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip("no chromium for the playground test: run scripts/provision.sh")
    return path


def test_playground_in_headless_chromium(server, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.inner_text("#tabs").split() == ["Generate", "Translate", "Chat", "Classify", "Forecast"]

            # generation, the same request the API test makes: the page shows the server's text
            page.fill("#gen-prompt", "the company said")
            page.fill("#gen-words", "12")
            page.fill("#gen-seed", "7")
            page.click("#gen-run")
            page.wait_for_function("document.querySelector('#gen-output b')?.textContent.length > 0", timeout=20_000)
            want = server.post(
                "/v1/generate",
                {"prompt": "the company said", "max_new_tokens": 12, "temperature": 0.8, "top_k": 40, "seed": 7},
            ).json()["text"]
            assert page.inner_text("#gen-output b").split() == want.split()
            assert page.inner_text("#gen-error") == ""
            page.screenshot(path=str(tmp_path / "playground.png"))

            page.click("#tabbtn-translate")
            page.click("#tr-run")
            page.wait_for_function("document.querySelector('#tr-hint').textContent.startsWith('attention')")
            assert page.eval_on_selector("#tr-heatmap", "c => c.width * c.height") > 1000

            page.click("#tabbtn-chat")
            page.click("#chat-send")
            page.wait_for_selector(".msg.bot")
            assert page.inner_text(".msg.user") == "how are you?"

            page.click("#tabbtn-classify")
            page.select_option("#tab-classify select.model", "spam")
            page.click("#cls-run")
            page.wait_for_selector("#cls-bars .bar")
            assert sorted(page.locator("#cls-bars .bar span:first-child").all_inner_texts()) == ["ham", "spam"]

            page.click("#tabbtn-forecast")
            page.fill("#fc-horizon", "6")
            page.click("#fc-run")
            page.wait_for_selector("#fc-chart polyline")
            assert page.locator("#fc-chart polyline").count() == 2 and page.locator("#fc-chart polygon").count() == 1
            page.screenshot(path=str(tmp_path / "playground-forecast.png"))

            page.fill("#fc-history", "1, 2, 3")  # too short: the page shows the server's message
            page.click("#fc-run")
            page.wait_for_function("document.querySelector('#fc-error').textContent.includes('422')")
            assert not failed, f"requests that failed: {failed}"
        finally:
            browser.close()
    assert (tmp_path / "playground.png").stat().st_size > 10_000


# -- the load test ----------------------------------------------------------------------------------------------------
def test_load_test_runs_clean_against_the_server(server, capsys):
    spec = importlib.util.spec_from_file_location("load_test", REPO / "benchmarks" / "load_test.py")
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    code = load_test.main(
        [
            "--url",
            server.url,
            "--pid",
            str(server.proc.pid),
            "--lm-model",
            "lm",
            "--classifier-model",
            "spam",
            "--clients",
            "3",
            "--seconds",
            "1.5",
            "--warmup",
            "0.5",
            "--max-new-tokens",
            "5",
        ]
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and report["ok"], report
    assert report["errors"] == 0 and report["by_endpoint"]["generate"]["requests"] > 0
    assert report["by_endpoint"]["classify"]["requests"] > 0 and report["rss_mib"]["before"] > 0
