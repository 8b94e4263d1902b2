"""Real Redis and NATS servers for the tests: redis-server and
nats-server -js on a free loopback port with their files in a directory
of the test's, ready (answering) when the constructor returns, stopped by
PID.  A server that cannot start raises EngineError with the command
line and the end of what the server wrote, so that a test fails saying
why: a test that needs an engine never skips.

    with Redis(tmp) as r:            # r.host, r.port, r.url
        ...
        r.kill()                     # SIGKILL: an outage
        r.restart()                  # the same port and directory
    # stopped: SIGTERM, then SIGKILL after a deadline

The programs are found on PATH and in /usr/sbin (Debian puts nats-server
there); TCPCHAT_REDIS_SERVER and TCPCHAT_NATS_SERVER name others."""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time

DEADLINE = 10.0
HOST = "127.0.0.1"


class EngineError(RuntimeError):
    """An engine that could not start, or did not stop."""


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def find_program(name, env_var):
    """The path of the server program name, or EngineError."""
    exe = os.environ.get(env_var)
    if exe:
        return exe
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin"
    exe = shutil.which(name, path=path)
    if exe is None:
        raise EngineError(f"{name} not found on PATH or in /usr/sbin "
                          f"(Debian: apt-get install {name}; or set "
                          f"{env_var})")
    return exe


class Engine:
    """A server process on HOST:port with its files in dir.  Subclasses
    give NAME, ENV, SCHEME, argv() and probe()."""

    NAME = ENV = SCHEME = ""
    CLEAN_EXIT = 0  # the exit status after SIGTERM
    ATTEMPTS = 3  # new ports tried when the first start fails

    def __init__(self, tmpdir, exe=None, deadline=DEADLINE):
        self.exe = exe or find_program(self.NAME, self.ENV)
        self.dir = os.path.join(tmpdir, self.NAME)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "server.log")
        self.deadline = deadline
        self.host = HOST
        self.proc = None
        self.port = None
        for attempt in range(self.ATTEMPTS):
            self.port = free_port()
            try:
                self._start()
                return
            except EngineError:
                # Another process may have taken the port meanwhile.
                if attempt + 1 == self.ATTEMPTS:
                    raise

    @property
    def url(self):
        return f"{self.SCHEME}://{self.host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        raise NotImplementedError

    def probe(self, sock):
        """True when the server on the connected sock answers as ready,
        False to try again; raises OSError on a broken connection."""
        raise NotImplementedError

    def _start(self):
        cmd = self.argv()
        with open(self.log, "ab") as log:
            self._log_start = log.tell()
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                             stdout=log,
                                             stderr=subprocess.STDOUT,
                                             cwd=self.dir)
            except OSError as e:
                raise EngineError(f"{self.NAME}: cannot run "
                                  f"{shlex.join(cmd)}: {e}") from None
        end = time.monotonic() + self.deadline
        while True:
            if self.proc.poll() is not None:
                status = self.proc.returncode
                self.proc = None
                raise self._error(cmd, f"exited with status {status} "
                                       f"before answering")
            if self._ready():
                return
            if time.monotonic() >= end:
                self._force_kill()
                raise self._error(cmd, f"did not answer on {self.url} "
                                       f"within {self.deadline:g} s")
            # Waits for an exit or 20 ms, whichever comes first.
            try:
                self.proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass

    def _ready(self):
        try:
            with socket.create_connection((self.host, self.port),
                                          timeout=1.0) as s:
                return self.probe(s)
        except OSError:
            return False

    def output(self):
        """What the server wrote since its last start."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _error(self, cmd, what):
        tail = "\n".join(self.output().splitlines()[-20:])
        return EngineError(f"{self.NAME} {what}\n"
                           f"command: {shlex.join(cmd)}\n"
                           f"output (last lines):\n{tail or '(none)'}")

    def _force_kill(self):
        if self.proc is None:
            return
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self):
        """SIGTERM, then SIGKILL when it has not exited within the
        deadline.  Returns the exit status (CLEAN_EXIT after a clean
        shutdown, -9 after SIGKILL, None when not running)."""
        if self.proc is None:
            return None
        proc = self.proc
        try:
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=self.deadline)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        self.proc = None
        return status

    def kill(self):
        """SIGKILL, as in an outage; the port and directory are kept for
        restart()."""
        self._force_kill()

    def restart(self):
        """Stops the server if it runs and starts it again on the same
        port and directory; ready when this returns."""
        self.stop()
        self._start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def recv_until(sock, marker, limit=1 << 16):
    """Bytes read from sock up to and including the first marker (the
    socket's timeout bounds each read).  OSError when the peer closes."""
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("connection closed")
        data += chunk
        if len(data) > limit:
            raise OSError("answer too long")
    return data


class Redis(Engine):
    """redis-server without persistence: no RDB snapshots, no AOF."""

    NAME, ENV, SCHEME = "redis-server", "TCPCHAT_REDIS_SERVER", "redis"

    def argv(self):
        return [self.exe, "--port", str(self.port), "--bind", self.host,
                "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", "",
                "--protected-mode", "no"]

    def probe(self, sock):
        sock.sendall(b"PING\r\n")
        # -LOADING while a dataset loads: not ready yet.
        return recv_until(sock, b"\r\n") == b"+PONG\r\n"


class Nats(Engine):
    """nats-server, with JetStream storing under the directory when
    jetstream is true."""

    NAME, ENV, SCHEME = "nats-server", "TCPCHAT_NATS_SERVER", "nats"
    CLEAN_EXIT = 1  # nats-server exits 1 after a clean shutdown on SIGTERM

    def __init__(self, tmpdir, jetstream=True, exe=None, deadline=DEADLINE):
        self.jetstream = jetstream
        super().__init__(tmpdir, exe=exe, deadline=deadline)

    def argv(self):
        cmd = [self.exe, "-a", self.host, "-p", str(self.port)]
        if self.jetstream:
            cmd += ["-js", "-sd", self.dir]
        return cmd

    def probe(self, sock):
        line = recv_until(sock, b"\r\n")
        if not line.startswith(b"INFO {"):
            return False
        return not self.jetstream or b'"jetstream":true' in line
