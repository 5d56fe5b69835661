"""Open a report in headless Chromium: console errors, failed loads and a full-page screenshot.

A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no websocket library or WebDriver is
needed: only the ``chromium`` binary (Debian: ``apt-get install chromium``). Used by the tests to
check that ``index.html`` opens offline without any console message of level error, and by anyone
who wants to look at a report on a machine without a display.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from spela_hw.errors import SpelaError

__all__ = ["BrowserCheck", "find_chromium", "open_in_browser"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on the PATH (``SPELA_HW_CHROMIUM`` overrides)."""
    env = os.environ.get("SPELA_HW_CHROMIUM")
    if env:
        return env
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class BrowserCheck:
    """What the browser saw.

    Attributes
    ----------
    errors : list of str
        Console calls of level error/assert, uncaught exceptions and log entries of level error
        (failed resource loads, blocked requests, ...).
    messages : list of dict
        Every console call and log entry (``source``, ``level``, ``text``).
    screenshot_png : bytes
        Full-page screenshot.
    width, height : int
        CSS size of the whole page.
    title : str
    values : dict
        Results of the ``expressions`` given to :func:`open_in_browser` (JSON values), by name.
    """

    errors: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    screenshot_png: bytes = b""
    width: int = 0
    height: int = 0
    title: str = ""
    values: dict = field(default_factory=dict)


class _Pipe:
    def __init__(self, proc, wfd: int, rfd: int):
        self.proc, self.wfd, self.rfd = proc, wfd, rfd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]
        return self.next_id

    def _read_one(self, deadline: float) -> dict | None:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                return None
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise SpelaError("chromium closed the DevTools pipe (did it crash?)")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        cid = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise SpelaError(f"chromium did not answer {method} within {timeout} s")
            if msg.get("id") == cid:
                if "error" in msg:
                    raise SpelaError(f"chromium: {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float) -> dict | None:
        for i, ev in enumerate(self.events):
            if ev["method"] == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                return None
            if "method" in msg:
                if msg["method"] == method:
                    return msg
                self.events.append(msg)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                return
            if "method" in msg:
                self.events.append(msg)


def _args_text(args: list) -> str:
    out = []
    for a in args:
        if "value" in a:
            out.append(str(a["value"]))
        else:
            out.append(a.get("description") or a.get("type", ""))
    return " ".join(out)


def open_in_browser(path, width: int = 1280, height: int = 900, settle_s: float = 0.5,
                    timeout: float = 60.0, binary: str | None = None,
                    expressions: dict | None = None) -> BrowserCheck:
    """Load ``path`` (a local HTML file) in headless Chromium and report what happened.

    ``expressions`` (name -> JavaScript expression) are evaluated in the loaded page, before the
    screenshot, with the window at ``width`` x ``height`` (what a reader sees first); their JSON
    values come back in :attr:`BrowserCheck.values`, e.g. the position of an element on the
    first screen: ``{"bottom": "document.querySelector('#verdict').getBoundingClientRect().bottom"}``.

    Raises :class:`~spela_hw.errors.SpelaError` when no Chromium binary is found or it fails.
    """
    binary = binary or find_chromium()
    if not binary:
        raise SpelaError("no Chromium found: install it (Debian: apt-get install -y chromium) or set "
                         "SPELA_HW_CHROMIUM")
    url = Path(path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="spela-hw-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds():
        # Chromium reads commands on fd 3 and writes replies on fd 4. dup2 leaves them inheritable;
        # every other descriptor Python opened is close-on-exec (PEP 446), hence close_fds=False.
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
           "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-pipe",
           f"--window-size={width},{height}", "about:blank"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=child_fds, close_fds=False)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    result = BrowserCheck()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.call("Page.navigate", {"url": url}, session=session, timeout=timeout)
        if pipe.wait_event("Page.loadEventFired", timeout) is None:
            raise SpelaError(f"{url} did not finish loading within {timeout} s")
        pipe.drain(settle_s)
        for name, expr in (expressions or {}).items():
            res = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
            if "exceptionDetails" in res:
                raise SpelaError(f"chromium: evaluating {name}: {res['exceptionDetails'].get('text', 'error')}")
            result.values[name] = res.get("result", {}).get("value")
        metrics = pipe.call("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        result.width, result.height = int(size["width"]), int(size["height"])
        title = pipe.call("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                          session=session)
        result.title = str(title.get("result", {}).get("value", ""))
        shot = pipe.call("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": 0, "width": result.width, "height": min(result.height, 16000),
                                   "scale": 1}}, session=session, timeout=timeout)
        import base64

        result.screenshot_png = base64.b64decode(shot["data"])
        pipe.drain(0.1)
        for ev in pipe.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.consoleAPICalled":
                msg = {"source": "console", "level": p.get("type"), "text": _args_text(p.get("args", []))}
                result.messages.append(msg)
                if p.get("type") in ("error", "assert"):
                    result.errors.append(f"console.{p.get('type')}: {msg['text']}")
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                text = (d.get("exception") or {}).get("description") or d.get("text", "exception")
                result.messages.append({"source": "exception", "level": "error", "text": text})
                result.errors.append(f"uncaught: {text}")
            elif m == "Log.entryAdded":
                e = p.get("entry", {})
                msg = {"source": e.get("source"), "level": e.get("level"),
                       "text": f"{e.get('text', '')} {e.get('url', '')}".strip()}
                result.messages.append(msg)
                if e.get("level") == "error":
                    result.errors.append(f"{e.get('source')}: {msg['text']}")
        try:
            pipe.send("Browser.close")
        except OSError:
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    return result
