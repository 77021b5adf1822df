#!/usr/bin/env python3
"""The observability suite: a real cluster on this machine (a coordinator and two workers,
each with its HTTP listener), a real Prometheus scraping all three every second, a real
headless Chromium driven over WebDriver, and the dashboard's sign-in and CSRF rules on a
cluster secured with TLS and tokens.

    deploy/observe-test.py [--only STEP[,STEP...]] [--keep]

Steps: api (the JSON API against `weft status --json`, escaping), logs (`weft logs` and
the dashboard's log page show an attempt's stderr, read from its worker), prometheus (task counters
in Prometheus equal the job's tasks; every PromQL expression of the Grafana dashboard returns
data), browser (the job appears and advances, every worker is listed, the cancel button
cancels; a screenshot goes to docs/dashboard-job.png), secured (tokens, cookies, CSRF, the
listener rule), top (`weft top` in tmux shows the running job), traces (spans exported over
OTLP reach a collector: job, task and attempt spans from the coordinator and the worker, with
their ids), takeover (two coordinators on a PostgreSQL of its own: a standby's dashboard sends
the browser on to the leader's; a job's page open when the leader is killed says so, and
follows the job to the new leader once the killed one is back as a standby).

Builds target/release/weft; needs Debian's prometheus, chromium, chromium-driver, tmux,
libnss3-tools and postgresql (`.ci/run` installs them).
"""

import argparse
import base64
import http.cookiejar
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import Postgres, free_port, log, wait_until

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
WEFT = REPO / "target" / "release" / "weft"
GRAFANA = DEPLOY / "grafana" / "weft-dashboard.json"
SCREENSHOT = REPO / "docs" / "dashboard-job.png"
STEPS = ["api", "logs", "prometheus", "browser", "secured", "top", "traces", "takeover"]
SLOW_MAPPER = "sleep 1; tr -cs 'A-Za-z' '\\n' | awk 'length($0) > 0 { print $0 \"\\t1\" }'"
SUM = "awk -F'\\t' '{ s[$1] += $2 } END { for (k in s) print k \"\\t\" s[k] }'"


class Cluster:
    """A coordinator and workers on loopback, each with its HTTP listener."""

    def __init__(self, root, workers=2, tls_dir=None, coordinator_flags=(), otlp=None, slots=1):
        self.root = root
        root.mkdir(parents=True)
        self.port, self.http_port = free_port(), free_port()
        self.tls_dir = tls_dir
        scheme = "https" if tls_dir else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.http = f"{scheme}://127.0.0.1:{self.http_port}"
        self.env = dict(os.environ, WEFT_COORDINATOR=self.url)
        tls = ["--tls-dir", tls_dir] if tls_dir else []
        self.otlp = ["--otlp-endpoint", otlp] if otlp else []
        if tls_dir:
            self.env["WEFT_TLS_DIR"] = str(tls_dir)
            self.env["WEFT_TOKEN_FILE"] = str(Path(tls_dir) / "admin.token")
        self.processes = [self.spawn("coordinator", [
            "coordinator", "--listen", f"127.0.0.1:{self.port}", "--http", f"127.0.0.1:{self.http_port}",
            "--state-dir", root / "state", *tls, *coordinator_flags])]
        self.worker_http = []
        for i in range(workers):
            port = free_port()
            self.worker_http.append(f"{scheme}://127.0.0.1:{port}")
            self.processes.append(self.spawn(f"worker-{i}", [
                "worker", "--coordinator", self.url, "--slots", str(slots), "--http", f"127.0.0.1:{port}",
                "--work-dir", root / f"work-{i}", *tls]))
        wait_until(lambda: self.weft("health", check=False).returncode == 0, "the coordinator to serve", 30)
        wait_until(lambda: len(self.workers_joined()) == workers, "the workers to join", 30)

    def spawn(self, name, args):
        log_file = open(self.root / f"{name}.log", "a")
        return subprocess.Popen([str(a) for a in [WEFT, *args, *self.otlp]], stdout=subprocess.DEVNULL, stderr=log_file,
                                env=dict(os.environ, WEFT_LOG="info"))

    def weft(self, *args, check=True, timeout=120):
        result = subprocess.run([str(a) for a in [WEFT, *args]], capture_output=True, text=True,
                                env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"weft {' '.join(map(str, args))}: {result.stderr.strip()[-800:]}")
        return result

    def workers_joined(self):
        try:
            return get_json(f"{self.http}/api/workers", token=self.admin_token())["workers"]
        except (OSError, urllib.error.URLError):
            return []

    def admin_token(self):
        return (Path(self.tls_dir) / "admin.token").read_text().strip() if self.tls_dir else None

    def submit(self, *flags):
        return self.weft("submit", *flags).stdout.strip()

    def status(self, job):
        return json.loads(self.weft("status", job, "--json").stdout)

    def stop(self):
        for p in reversed(self.processes):
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


# HTTP, with the cluster's CA when it speaks TLS.

CONTEXT = None


def opener(cookies=None):
    handlers = [urllib.request.HTTPSHandler(context=CONTEXT)] if CONTEXT else []
    if cookies is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(cookies))
    return urllib.request.build_opener(*handlers, NoRedirect())


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url, token=None, data=None, cookies=None, headers=None, method=None):
    """(status, headers, body) of a request; errors are answers too."""
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with opener(cookies).open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def get_json(url, token=None):
    status, _, body = request(url, token=token)
    if status != 200:
        raise RuntimeError(f"GET {url}: {status} {body[:300]}")
    return json.loads(body)


def make_input(inputs, files=8, lines=2000):
    inputs.mkdir(parents=True, exist_ok=True)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    for i in range(files):
        (inputs / f"part-{i}.txt").write_text(
            "".join(f"{words[(i + n) % 6]} {words[n % 6]} line {n}\n" for n in range(lines)))
    return inputs


def stable(job_json):
    """A job's JSON without what may change between two reads of a job that has ended."""
    return {k: v for k, v in job_json.items() if k not in ("running_attempts",)}


# The steps.

def step_api(cluster, root):
    inputs = make_input(root / "in-api")
    name = "<script>alert('weft')</script> & co"
    job = cluster.submit("--input", inputs, "--output", root / "out-api", "--app", "wordcount", "--name", name, "--wait")
    from_cli = cluster.status(job)
    from_api = get_json(f"{cluster.http}/api/jobs/{job}")
    assert stable(from_api) == stable(from_cli), f"API and CLI differ:\n{from_api}\n{from_cli}"
    listed = get_json(f"{cluster.http}/api/jobs")["jobs"]
    assert any(j["id"] == job and j["name"] == name for j in listed), listed
    status, _, body = request(f"{cluster.http}/api/jobs/job-999999")
    assert status == 404, (status, body)
    status, _, body = request(f"{cluster.http}/api/jobs/%3Cbad%3E")
    assert status == 404, (status, body)
    for page in ["/", f"/jobs/{job}"]:
        status, _, html = request(f"{cluster.http}{page}")
        assert status == 200, (page, status)
        assert "<script>alert" not in html, f"{page} shows the name unescaped"
        assert "&#60;script&#62;alert(" in html, f"{page} does not show the name as text"
    workers = get_json(f"{cluster.http}/api/workers")["workers"]
    assert len(workers) == 2 and all(w["succeeded"] > 0 for w in workers), workers
    assert get_json(f"{cluster.http}/api/overview")["workers"] == 2
    # A cancel with neither a token nor a session's CSRF token is refused, even on an open
    # coordinator: another site's page must not cancel jobs on this machine.
    status, _, _ = request(f"{cluster.http}/api/jobs/{job}/cancel", data=b"", method="POST")
    assert status == 403, status
    return f"{job}: API equals `weft status --json`; name escaped on 2 pages; cancel without CSRF refused"


def step_logs(cluster, root):
    inputs = make_input(root / "in-logs", files=2, lines=10)
    mapper = "echo 'reporter:status:half way' >&2; echo '<b>said on stderr</b>' >&2; cat"
    job = cluster.submit("--input", inputs, "--output", root / "out-logs", "--mapper", mapper, "--reducer", "cat", "--wait")
    text = cluster.weft("logs", job, "m0").stdout
    assert f"==> {job}-m-00000 attempt 1" in text, text
    for wanted in ["reporter:status:half way", "<b>said on stderr</b>", "started", "ended succeeded"]:
        assert wanted in text, f"{wanted!r} not in the log:\n{text}"
    every = cluster.weft("logs", job).stdout
    assert every.count("==> ") == 3, every  # 2 maps and 1 reduce
    missing = cluster.weft("logs", job, "m9", check=False)
    assert missing.returncode != 0 and "no attempt" in missing.stderr, missing.stderr
    attempt = next(a for a in cluster.status(job)["attempts"] if a["kind"] == "map" and a["task"] == 0)
    status, _, page = request(f"{cluster.http}/jobs/{job}/logs/{attempt['id']}")
    assert status == 200 and "&#60;b&#62;said on stderr&#60;/b&#62;" in page and "<b>said" not in page, page[:2000]
    return f"{job}: weft logs shows stderr, reporter lines and the worker's notes; the log page escapes it"


class Prometheus:
    def __init__(self, root, targets, token=None, ca=None):
        self.port = free_port()
        self.root = root / "prometheus"
        self.root.mkdir()
        jobs = []
        for name, urls in targets.items():
            job = {"job_name": name, "scrape_interval": "1s",
                   "static_configs": [{"targets": [urllib.parse.urlsplit(u).netloc for u in urls]}]}
            if urls[0].startswith("https"):
                job["scheme"] = "https"
                job["tls_config"] = {"ca_file": str(ca), "server_name": "coordinator.weft" if name == "weft-coordinator" else "worker.weft"}
                if name != "weft-coordinator":
                    # A worker's /metrics asks for a certificate of the cluster's CA.
                    job["tls_config"].update(cert_file=str(ca.parent / "worker.pem"), key_file=str(ca.parent / "worker.key"))
            if token and name == "weft-coordinator":
                job["authorization"] = {"credentials": token}
            jobs.append(job)
        config = self.root / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}))
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "prometheus.log", "w"))
        wait_until(self.ready, "Prometheus to start", 60)

    def ready(self):
        try:
            return request(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, expr):
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=30) as r:
            answer = json.loads(r.read())
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def step_prometheus(cluster, root):
    prom = Prometheus(root, {"weft-coordinator": [cluster.http], "weft-workers": cluster.worker_http})
    try:
        wait_until(lambda: prom.value('sum(up{job=~"weft.*"})') == 3, "Prometheus to scrape all three", 60)
        inputs = make_input(root / "in-p", files=6)
        job = cluster.submit("--input", inputs, "--output", root / "out-prom", "--mapper", "cat", "--reducer", "cat",
                             "--reduce-tasks", "3", "--wait")
        # Every task of every job this coordinator ran (this one's, and earlier steps').
        jobs = json.loads(cluster.weft("jobs", "--json").stdout)
        want = sum(j["maps"]["done"] + j["reduces"]["done"] for j in jobs if j["state"] == "succeeded")
        assert job in [j["id"] for j in jobs], jobs
        wait_until(lambda: prom.value("sum(weft_tasks_committed_total)") == want,
                   f"Prometheus to see {want} committed tasks", 30)
        got = {r["metric"]["kind"]: float(r["value"][1]) for r in prom.query("weft_tasks_committed_total")}
        assert got["queue"] == 0, got
        wait_until(lambda: prom.value('sum(weft_worker_attempts_total{outcome="succeeded"})') >= want,
                   "the workers' succeeded attempts to cover the committed tasks", 30)
        assert prom.value("sum(weft_worker_shuffle_served_bytes_total)") > 0
        exprs = dashboard_exprs()
        # Rates need two samples after the job: wait until every expression has data.
        empty = lambda: [e for e in exprs if not prom.query(e)]  # noqa: E731
        try:
            wait_until(lambda: not empty(), "every Grafana expression to return data", 60)
        except RuntimeError:
            raise AssertionError(f"Grafana expressions without data: {empty()}")
        return f"{job}: {want} committed tasks in Prometheus; {len(exprs)} Grafana expressions return data"
    finally:
        prom.stop()


def dashboard_exprs():
    dashboard = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10, exprs
    return [e.replace("$__rate_interval", "1m") for e in exprs]


class Browser:
    """Headless Chromium over WebDriver (chromedriver), the W3C protocol by hand."""

    def __init__(self, root, home=None):
        """`home`: the HOME Chromium runs with (its certificate store is HOME/.pki/nssdb)."""
        self.port = free_port()
        env = dict(os.environ, HOME=str(home)) if home else None
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=open(root / "chromedriver.log", "w"))
        wait_until(lambda: self.call("GET", "/status", ok_errors=True) is not None, "chromedriver to start", 30)
        profile = root / ("chromium-profile" if home is None else "chromium-profile-secured")
        args = ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"args": args, "binary": shutil.which("chromium")}}}})
        self.session = f"/session/{session['sessionId']}"

    def call(self, method, path, body=None, ok_errors=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except (urllib.error.URLError, ConnectionError) as e:
            if ok_errors:
                return None
            detail = e.read().decode() if isinstance(e, urllib.error.HTTPError) else str(e)
            raise RuntimeError(f"WebDriver {method} {path}: {detail[:500]}")

    def go(self, url):
        self.call("POST", f"{self.session}/url", {"url": url})

    def script(self, source, *args):
        return self.call("POST", f"{self.session}/execute/sync", {"script": source, "args": list(args)})

    def text(self, css):
        """The text of the first element `css` finds, or None. Read in one script: the live
        updates replace elements, so a found element may be gone by the next command."""
        return self.script("var e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;", css)

    def count(self, css):
        return self.script("return document.querySelectorAll(arguments[0]).length;", css)

    def click(self, css):
        """Clicks the element `css` finds, finding it again if a live update replaced it."""
        for attempt in range(5):
            found = self.call("POST", f"{self.session}/element", {"using": "css selector", "value": css})
            try:
                self.call("POST", f"{self.session}/element/{next(iter(found.values()))}/click", {})
                return
            except RuntimeError as e:
                if "stale element" not in str(e) or attempt == 4:
                    raise

    def accept_alert(self):
        self.call("POST", f"{self.session}/alert/accept", {})

    def screenshot(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("GET", f"{self.session}/screenshot")))

    def stop(self):
        if hasattr(self, "session"):
            self.call("DELETE", self.session, ok_errors=True)
        self.driver.terminate()
        self.driver.wait(timeout=30)


def step_browser(cluster, root):
    inputs = make_input(root / "in-b", files=12)
    browser = Browser(root)
    try:
        job = cluster.submit("--input", inputs, "--output", root / "out-browser", "--mapper", SLOW_MAPPER,
                             "--reducer", SUM, "--reduce-tasks", "2", "--name", "slow wordcount")
        browser.go(f"{cluster.http}/")
        wait_until(lambda: browser.text(f'tr[data-job="{job}"]') is not None, "the job in the jobs list", 20)
        browser.go(f"{cluster.http}/workers")
        wait_until(lambda: browser.count("tr[data-worker]") == 2, "both workers in the list", 20)
        browser.go(f"{cluster.http}/jobs/{job}")
        done = lambda: int(browser.text("#maps").split("/")[0])  # noqa: E731
        first = done()
        wait_until(lambda: done() > first, "the map progress to advance on the page (live updates)", 30)
        wait_until(lambda: done() >= 6, "half the maps", 60)
        browser.screenshot(SCREENSHOT)
        wait_until(lambda: browser.text("#job-state") == "succeeded", "the job to succeed on the page", 120)
        status = cluster.status(job)
        assert status["state"] == "succeeded"
        timeline = check_timeline(browser, status)


        victim = cluster.submit("--input", inputs, "--output", root / "out-cancel", "--mapper", "sleep 60; cat",
                                "--name", "to cancel")
        browser.go(f"{cluster.http}/jobs/{victim}")
        wait_until(lambda: browser.text("#job-state") == "running", "the job to run", 30)
        browser.click("#cancel")
        browser.accept_alert()
        wait_until(lambda: cluster.status(victim)["state"] == "cancelled", "the cancel button to cancel", 30)
        wait_until(lambda: browser.text("#job-state") == "cancelled", "the page to show it cancelled", 30)
        return (f"{job} seen advancing and succeeding; {timeline}; 2 workers listed; {victim} cancelled by its button; "
                f"{SCREENSHOT.relative_to(REPO)}")
    finally:
        browser.stop()


def step_takeover(_cluster, root):
    """A browser follows a job across a takeover: sent from the standby's dashboard to the
    leader's, told when the leader is killed, and brought to the new leader's once the
    killed coordinator is back (as a supervisor restarts it) and sends it on."""
    database = Postgres(root / "takeover-db")
    processes = {}
    ports = [free_port(), free_port()]
    dashboards = [f"http://127.0.0.1:{free_port()}" for _ in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    env = dict(os.environ, WEFT_COORDINATOR=",".join(urls))
    logs = root / "takeover"
    logs.mkdir()

    def spawn(name, args):
        log_file = open(logs / f"{name}.log", "a")
        processes[name] = subprocess.Popen([str(a) for a in [WEFT, *args]], stdout=subprocess.DEVNULL,
                                           stderr=log_file, env=dict(os.environ, WEFT_LOG="info"))

    def start(i):
        spawn(f"coordinator-{i}", [
            "coordinator", "--listen", urls[i].removeprefix("http://"), "--http", dashboards[i].removeprefix("http://"),
            "--state", database.url, "--leader-lease", "2", "--recovery-grace", "1", "--state-dir", logs / f"state-{i}"])

    def health(i, *flags):
        return subprocess.run([WEFT, "health", "--coordinator", urls[i], *flags], capture_output=True, text=True)

    def weft(*args):
        done = subprocess.run([str(a) for a in [WEFT, *args]], capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"weft {' '.join(map(str, args))}: {done.stderr.strip()[-800:]}")
        return done.stdout.strip()

    browser = None
    try:
        start(0)
        wait_until(lambda: health(0, "--leader").returncode == 0, "the first coordinator to lead", 30)
        start(1)
        wait_until(lambda: "standing by" in health(1).stdout, "the second to stand by", 30)
        spawn("worker", ["worker", "--coordinator", ",".join(urls), "--slots", "2", "--work-dir", logs / "work"])
        inputs = make_input(root / "in-takeover", files=12, lines=200)
        job = weft("submit", "--input", inputs, "--output", root / "out-takeover", "--name", "across a takeover",
                   "--mapper", SLOW_MAPPER.replace("sleep 1", "sleep 2"), "--reducer", SUM)
        browser = Browser(root)
        here = lambda: browser.script("return window.location.href;")  # noqa: E731
        browser.go(f"{dashboards[1]}/jobs/{job}")
        wait_until(lambda: here().startswith(dashboards[0]), "the standby to send the browser to the leader", 20)
        wait_until(lambda: browser.text("#job-state") == "running", "the job to run on the leader's page", 60)
        processes["coordinator-0"].kill()
        processes["coordinator-0"].wait()
        killed = time.time()
        wait_until(lambda: browser.count("p.lost") == 1, "the page to say it lost the coordinator", 20)
        wait_until(lambda: health(1, "--leader").returncode == 0, "the standby to lead", 30)
        led = time.time() - killed
        start(0)
        wait_until(lambda: here().startswith(dashboards[1]), "the page to follow the job to the new leader", 60)
        followed = time.time() - killed
        wait_until(lambda: browser.text("#job-state") == "succeeded", "the job to succeed on the new leader's page", 120)
        state = json.loads(weft("status", job, "--json"))["state"]
        assert state == "succeeded", state
        return (f"{job}: the standby's dashboard sent the browser to the leader's; after a kill -9 of the leader "
                f"the page said so, the standby led {led:.1f} s later, and the page followed the job to it "
                f"{followed:.1f} s after the kill (the killed one restarted as a standby), where it succeeded")
    finally:
        if browser:
            browser.stop()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        database.stop()


def check_timeline(browser, status):
    """A job's page draws a bar for every attempt that reached a worker, none covering
    another: in each lane the bars, as laid out by the browser, do not overlap."""
    bars = browser.script("""
        return Array.from(document.querySelectorAll('.timeline .lane')).map(function (lane) {
          return {worker: lane.dataset.worker, bars: Array.from(lane.querySelectorAll('a.attempt')).map(function (a) {
            var r = a.getBoundingClientRect();
            return {attempt: a.getAttribute('href').split('/').pop(), left: r.left, right: r.right};
          })};
        });""")
    placed = sorted(str(a["id"]) for a in status["attempts"] if a["worker"])
    drawn = sorted(b["attempt"] for lane in bars for b in lane["bars"])
    assert drawn == placed, f"bars {drawn} for attempts {placed}"
    assert all(lane["worker"] for lane in bars), "a lane without a worker"
    for lane in bars:
        spans = sorted((b["left"], b["right"]) for b in lane["bars"])
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start + 0.5, f"bars overlap in a lane of {lane['worker']}: {spans}"
    workers = {lane["worker"] for lane in bars}
    assert len(bars) > len(workers), f"{len(bars)} lanes for {len(workers)} workers of 2 slots: no attempts side by side?"
    return f"{len(drawn)} attempts drawn in {len(bars)} lanes of {len(workers)} workers, none covering another"


def step_secured(root):
    global CONTEXT
    tls = root / "tls"
    # The names a browser reaches the dashboard by, as the README's cluster section says.
    subprocess.run([WEFT, "certs", "--dir", tls, "--host", "localhost", "--host", "127.0.0.1", "--token", "admin:admin",
                    "--token", "alice:submit", "--token", "watcher:read"], check=True, capture_output=True)
    CONTEXT = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    cluster = Cluster(root / "secured", workers=1, tls_dir=tls)
    try:
        token = {n: (tls / f"{n}.token").read_text().strip() for n in ["admin", "alice", "watcher"]}
        for path in ["/api/jobs", "/api/workers", "/metrics"]:
            status, headers, _ = request(f"{cluster.http}{path}")
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", (path, status)
            assert request(f"{cluster.http}{path}", token="wrong")[0] == 401
            assert request(f"{cluster.http}{path}", token=token["watcher"])[0] == 200
        status, headers, _ = request(f"{cluster.http}/")
        assert status == 303 and headers["Location"] == "/login", (status, headers)

        inputs = make_input(root / "in-s", files=2)
        alice = dict(cluster.env, WEFT_TOKEN_FILE=str(tls / "alice.token"))
        job = subprocess.run([WEFT, "submit", "--input", inputs, "--output", root / "out-secured", "--app", "wordcount",
                              "--name", "alice's"], capture_output=True, text=True, env=alice, check=True).stdout.strip()
        # The coordinator reads logs from the worker over TLS with its own certificate.
        wait = subprocess.run([WEFT, "wait", job], capture_output=True, text=True, env=alice)
        logs = subprocess.run([WEFT, "logs", job, "r0"], capture_output=True, text=True, env=alice)
        assert wait.returncode == 0 and logs.returncode == 0 and "ended succeeded" in logs.stdout, (wait.stderr, logs)
        # The watcher sees only its own jobs: alice's is not there.
        assert request(f"{cluster.http}/api/jobs/{job}", token=token["watcher"])[0] == 403
        assert request(f"{cluster.http}/api/jobs/{job}", token=token["alice"])[0] == 200

        # Sign in: a cookie that scripts cannot read and other sites cannot send.
        jar = http.cookiejar.CookieJar()
        status, headers, _ = request(f"{cluster.http}/login", data=b"token=wrong", cookies=jar)
        assert status == 401 and not list(jar), status
        form = urllib.parse.urlencode({"token": token["admin"]}).encode()
        status, headers, _ = request(f"{cluster.http}/login", data=form, cookies=jar)
        cookie = headers["Set-Cookie"]
        assert status == 303 and all(a in cookie for a in ["HttpOnly", "SameSite=Strict", "Secure"]), cookie
        assert token["admin"] not in cookie
        status, _, page = request(f"{cluster.http}/jobs/{job}", cookies=jar)
        assert status == 200, status
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        # A cancel by the session without its CSRF token, or with another, is refused.
        for presented in [b"", b"csrf=" + b"0" * 64]:
            status, _, _ = request(f"{cluster.http}/jobs/{job}/cancel", data=presented, cookies=jar)
            assert status == 403, status
        # The page's own form cancels (the job may have ended: then cancel leaves it so).
        status, headers, _ = request(f"{cluster.http}/jobs/{job}/cancel", data=f"csrf={csrf}".encode(), cookies=jar)
        assert status == 303, status
        signed_in = sign_in_with_a_browser(root, cluster, tls, token["alice"], job)
        # Prometheus scrapes the secured cluster as deploy/prometheus/prometheus.yml does: the
        # coordinator with a read token, the worker over TLS, both verified by the CA.
        prom = Prometheus(root / "secured", {"weft-coordinator": [cluster.http], "weft-workers": cluster.worker_http},
                          token=token["watcher"], ca=tls / "ca.pem")
        try:
            wait_until(lambda: prom.value('sum(up{job=~"weft.*"})') == 2, "Prometheus to scrape over TLS", 60)
        finally:
            prom.stop()
        # Without a certificate of the cluster's CA, a worker's /metrics refuses the handshake.
        try:
            status = request(f"{cluster.worker_http[0]}/metrics")[0]
        except (urllib.error.URLError, ConnectionError, ssl.SSLError) as e:
            status = f"refused: {e}"
        assert str(status).startswith("refused"), f"a worker's /metrics answered {status} without a client certificate"
        # A worker that leaves is listed as such, with why.
        worker = cluster.processes[1]
        worker.terminate()
        worker.wait(timeout=30)
        left = lambda: get_json(f"{cluster.http}/api/workers", token=token["watcher"])["left"]  # noqa: E731
        wait_until(lambda: len(left()) == 1, "the worker to be listed as left", 30)
        assert left()[0]["left_because"] and left()[0]["left_ms"] > 0, left()
        for name, secret in token.items():
            for log_file in (root / "secured").glob("*.log"):
                assert secret not in log_file.read_text(), f"{name}'s token in {log_file}"
    finally:
        cluster.stop()
        CONTEXT = None
    # The listener rule: a dashboard on the network without TLS is refused, named.
    probe = subprocess.run([WEFT, "coordinator", "--listen", f"127.0.0.1:{free_port()}", "--http",
                            f"0.0.0.0:{free_port()}", "--state-dir", root / "probe"],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "the dashboard" in probe.stderr, probe.stderr
    return f"{signed_in}; 401 without a token, 403 across owners, logs over TLS, a worker that left listed with why, Prometheus scrapes over TLS with a token (the coordinator) and a cluster certificate (a worker), a worker refuses a scraper without one, HttpOnly+SameSite=Strict+Secure cookie, CSRF enforced, no token in logs, plain dashboard on 0.0.0.0 refused"


def sign_in_with_a_browser(root, cluster, tls, token, job):
    """The README's way into a secured dashboard, in a real browser: the cluster's CA trusted
    in the browser's certificate store (certutil, as on a desktop), the dashboard opened by a
    name its certificate holds (https://localhost:PORT), and a token pasted on the sign-in
    page. No certificate error may be skipped: Chromium verifies the name and the CA."""
    if not shutil.which("certutil"):
        raise RuntimeError("certutil is not installed (Debian's libnss3-tools)")
    home = root / "browser-home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "weft cluster CA", "-t", "C,,", "-i", tls / "ca.pem"],
                   check=True, capture_output=True)
    dashboard = cluster.http.replace("127.0.0.1", "localhost")
    browser = Browser(root, home=home)
    try:
        browser.go(f"{dashboard}/")
        wait_until(lambda: browser.script("return location.pathname;") == "/login", "the sign-in page over verified TLS", 20)
        browser.script("document.querySelector('input[name=token]').value = arguments[0];"
                       "document.querySelector('form').submit();", token)
        wait_until(lambda: browser.text(f'tr[data-job="{job}"]') is not None, "the signed-in jobs list to show the job", 20)
        assert browser.script("return location.protocol;") == "https:"
        return f"signed in with a token at {dashboard}/ in Chromium trusting the cluster's CA"
    finally:
        browser.stop()


def step_top(cluster, root):
    if not shutil.which("tmux"):
        raise RuntimeError("tmux is not installed")
    inputs = make_input(root / "in-t", files=6)
    job = cluster.submit("--input", inputs, "--output", root / "out-top", "--mapper", "sleep 3; cat", "--name", "watched")
    session = f"weft-top-{os.getpid()}"
    command = f"WEFT_COORDINATOR={cluster.url} {WEFT} top"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", command], check=True)
    try:
        screen = lambda: subprocess.run(["tmux", "capture-pane", "-p", "-t", session],  # noqa: E731
                                        capture_output=True, text=True).stdout
        wait_until(lambda: job in screen() and "running" in screen(), "weft top to show the running job", 30)
        assert "workers" in screen(), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0,
                   "weft top to quit on q", 10)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    cluster.weft("cancel", job)
    return f"{job} shown running by weft top; q quits"


OTLP_PACKAGES = ["grpcio==1.76.0", "opentelemetry-proto==1.38.0"]


def step_traces(_cluster, root):
    venv = REPO / "target" / "observe-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *OTLP_PACKAGES], check=True)
    port_file, spans_file = root / "otlp.port", root / "spans.jsonl"
    receiver = subprocess.Popen([python, DEPLOY / "otlp_receiver.py", port_file, spans_file],
                                stderr=open(root / "otlp-receiver.log", "w"))
    try:
        def listening():
            port = port_file.read_text().strip() if port_file.exists() else ""
            if not port:
                return False
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", int(port))) == 0
        wait_until(listening, "the OTLP receiver to listen", 30)
        endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}"
        cluster = Cluster(root / "traced", workers=1, otlp=endpoint)
        try:
            inputs = make_input(root / "in-traces", files=2, lines=20)
            job = cluster.submit("--input", inputs, "--output", root / "out-traces", "--mapper", "cat",
                                 "--reducer", "cat", "--wait")
        finally:
            cluster.stop()  # SIGTERM: the daemons flush their spans
        spans = [json.loads(line) for line in spans_file.read_text().splitlines()] if spans_file.exists() else []
        def found(service, name, ids):
            return [s for s in spans if s["service"] == service and s["name"] == name
                    and all(str(s["attributes"].get(key, "")).startswith(value) for key, value in ids.items())]
        wanted = [("weft-coordinator", "job", {"job": job}), ("weft-coordinator", "task", {"task": job}),
                  ("weft-coordinator", "attempt", {"attempt": ""}), ("weft-worker", "attempt", {"job": job, "task": job})]
        missing = [w[:2] for w in wanted if not found(*w)]
        assert not missing, f"no spans {missing} for {job} among {len(spans)}: {spans[:5]}"
        return f"{job}: {len(spans)} spans received; job, task and attempt spans from the coordinator and the worker"
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(STEPS))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    steps = args.only.split(",")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "weft"], cwd=REPO, check=True)
    root = Path(tempfile.mkdtemp(prefix="weft-observe-"))
    log(f"== observability suite in {root}")
    cluster = None
    failed = False
    try:
        if any(s in steps for s in ["api", "logs", "prometheus", "browser", "top"]):
            # Two slots a worker: a job's page must show attempts that ran side by side.
            cluster = Cluster(root / "plain", slots=2)
        for step in steps:
            started = time.time()
            log(f"== {step}")
            if step == "secured":
                result = step_secured(root)
            elif step in ("traces", "takeover"):
                result = globals()[f"step_{step}"](None, root)
            else:
                result = globals()[f"step_{step}"](cluster, root)
            log(f"   ok ({time.time() - started:.1f} s): {result}")
    except Exception:
        failed = True
        raise
    finally:
        if cluster:
            cluster.stop()
        if failed:
            for log_file in sorted(root.rglob("*.log")):
                sys.stderr.write(f"--- {log_file}\n{log_file.read_text(errors='replace')[-3000:]}\n")
        if args.keep or failed:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
