"""nginx on a loopback port: fill a template, check it, start it, reload it, stop it."""

import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

from ops.processes import HOST, answers, children, free_port, stop, wait_until


def find_nginx() -> str | None:
    """The nginx binary ($NGINX, PATH, or Debian's /usr/sbin/nginx, off a user's PATH)."""
    for candidate in (os.environ.get("NGINX"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def render(template: Path, target: Path, **values: str) -> Path:
    """Fill every ${NAME} of `template` and write `target`; a placeholder left unfilled is
    an error naming it."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if leftover := re.search(r"\$\{\w+\}", text):
        raise ValueError(f"unfilled placeholder {leftover.group()} in {template}")
    target.write_text(text)
    return target


class Nginx:
    """One nginx master on a loopback port, run from `run_dir` (which holds its config and
    logs; it must be traversable by nginx's workers, `nobody` when started by root)."""

    def __init__(self, conf: Path, run_dir: Path, port: int) -> None:
        nginx = find_nginx()
        if nginx is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        self.conf, self.run_dir, self.port = conf, run_dir, port
        # -e: the error log before the config is read (the default is under /var/log).
        self.command = [nginx, "-c", str(conf), "-p", str(run_dir),
                        "-e", str(run_dir / "error.log")]
        self.process: subprocess.Popen | None = None

    def check(self) -> None:
        result = subprocess.run([*self.command, "-t"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t rejected {self.conf}:\n{result.stderr}")

    def start(self, ready_path: str = "/readyz", deadline_s: float = 30,
              tls_ca: Path | None = None) -> "Nginx":
        """Check the config, start nginx and wait until it proxies `ready_path`."""
        self.check()
        self.process = subprocess.Popen(self.command, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scheme, verify = (("https", ssl.create_default_context(cafile=tls_ca)) if tls_ca
                          else ("http", True))
        try:
            wait_until(lambda: answers(f"{scheme}://{HOST}:{self.port}{ready_path}", verify),
                       deadline_s, f"nginx (log: {self.run_dir / 'error.log'})", self.running)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def workers(self) -> set[int]:
        return children(self.process.pid)

    def reload(self, deadline_s: float = 30) -> None:
        """Graceful reload: requests in flight finish on the old workers; returns once every
        old worker has exited, so from then on every request meets the new config."""
        self.check()
        old = self.workers()
        self.process.send_signal(signal.SIGHUP)
        wait_until(lambda: not (old & self.workers()) and self.workers(), deadline_s,
                   "nginx's old workers to finish", self.running)

    def stop(self) -> None:
        stop(self.process, grace_s=10)


def run_dir(prefix: str, folder: Path | None = None) -> Path:
    """A folder for nginx's config and logs; traversable so nginx workers (nobody, when
    started by root) can write their logs there."""
    folder = folder or Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    return folder


class LoopbackProxy:
    """nginx on a loopback port, run from its own folder: subclasses fill in `self.nginx`
    (an Nginx for the config they render). A context manager: started and stopped with it."""

    nginx: Nginx

    def __init__(self, prefix: str, folder: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.run_dir = run_dir(prefix, folder)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    def start(self):
        self.nginx.start()
        return self

    def stop(self) -> None:
        self.nginx.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
