"""A real local Hugging Face endpoint for tests: `olah-cli` (a self-hosted Hub server) in offline mode, serving the git
repositories that tests/hub_repos.py builds under `<mirrors>/datasets/<org>/<name>` and `<mirrors>/models/<org>/<name>`.

Jobs reach it as a cluster would reach its own mirror: `HF_ENDPOINT=<url>`, `HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE` /
`TRANSFORMERS_OFFLINE` unset, and a private `HF_HOME` (see `hub_env`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from servers import free_port, stop_process

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


class HubServer:
    """`olah-cli -c config.toml` on 127.0.0.1 with `offline = true`: it serves only what is under `mirrors`."""

    def __init__(self, mirrors: Path, workdir: Path):
        exe = Path(sys.executable).with_name("olah-cli")
        if not exe.exists():
            exe = Path(shutil.which("olah-cli") or exe)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mirrors = Path(mirrors)
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{workdir / "repos"}"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\noffline = true\n", encoding="utf-8")
        self.log_path = workdir / "olah.log"
        self.log = open(self.log_path, "w")
        # olah writes its own logs relative to the working directory: keep them in workdir
        self.proc = subprocess.Popen([str(exe), "-c", str(config)], cwd=workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah-cli exited ({self.proc.returncode}): see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/datasets/none/none/revision/main", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answers (401: no such repo in its mirror): the server is up
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"olah-cli did not answer in 60 s: see {self.log_path}")

    def env(self, hf_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
        return hub_env(self.url, hf_home, base)

    def stop(self) -> None:
        stop_process(self.proc, self.log)


def hub_env(url: str, hf_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that reaches the hub through `url`: offline switches removed, a private HF_HOME
    (so nothing comes from another test's cache), no token."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in OFFLINE_VARS and k not in ("HF_TOKEN", "HF_HUB_CACHE", "HF_DATASETS_CACHE")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_XET="1")
    return env


def main() -> None:
    """Build the test repositories into DIR and serve them until interrupted (for trying a rehearsal by hand)."""
    import argparse

    from hub_repos import build_all

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = parser.parse_args()
    build_all(args.dir / "mirrors", args.shared)
    server = HubServer(args.dir / "mirrors", args.dir / "olah")
    print(f"serving {args.dir / 'mirrors'} at {server.url} (log {server.log_path}); Ctrl-C stops", flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
