"""A real one-node SLURM on 127.0.0.1 for the tests (tests/test_slurm.py).

Debian's slurm-wlm (slurmctld + slurmd) and munge, started without systemd, with two fake GPUs
(GRES backed by character devices). Every file it writes lies in one folder, except the two
configuration files SLURM only reads from ``/etc/slurm`` (the executor plugin's job step clears
``SLURM_CONF``); :meth:`LocalSlurm.stop` removes those, and the packages if it installed them, so
that no SLURM state is left behind: with a ``slurm.conf`` and no controller, every later
``snakemake`` call would probe for the controller (``scontrol show config``) and wait ~10 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "slurmctld", "slurmd", "slurm-client", "munge"]
ETC = Path("/etc/slurm")
CONFIG_FILES = [ETC / "slurm.conf", ETC / "gres.conf"]
MUNGE_RUN = Path("/run/munge")
#: Seconds the plugin waits before its first status check; squeue answers for finished jobs only
#: while they are younger than MinJobAge, which the plugin wants >= 3x this.
STATUS_DELAY = 1
MIN_JOB_AGE = 300


class Unavailable(Exception):
    """SLURM cannot be set up here (the message says why)."""


def _run(*cmd, check=True, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def _installed_packages() -> set[str]:
    out = _run("dpkg-query", "-W", "-f", "${Package} ${Status}\n", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


class LocalSlurm:
    """``start()`` installs what is missing (root and apt-get needed, else :class:`Unavailable`),
    writes the configuration and starts munged, slurmctld and slurmd; ``stop()`` undoes it all."""

    def __init__(self, folder: Path, gpus: int = 2):
        self.folder = Path(folder)
        self.gpus = gpus
        self.host = socket.gethostname()
        self.installed: list[str] = []  # packages this object installed (removed again by stop)
        self.started: list[tuple[str, Path]] = []  # (daemon, its pid file)
        self.wrote_config = False

    # --- setting up --------------------------------------------------------------------------

    def start(self) -> "LocalSlurm":
        if os.geteuid() != 0:
            raise Unavailable("a local SLURM needs root (it writes /etc/slurm/slurm.conf and "
                              "starts slurmctld, slurmd and munged); run the tests as root")
        if any(path.exists() for path in CONFIG_FILES) or _run("pgrep", "-x", "slurmctld",
                                                             check=False).returncode == 0:
            raise Unavailable("a SLURM configuration or controller already exists on this "
                              "machine; the test does not touch a real cluster")
        self._install()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._start_munge()
        self._start("slurmctld")
        self._start("slurmd")
        self._wait_for_node()
        return self

    def _install(self) -> None:
        before = _installed_packages()
        missing = [p for p in PACKAGES if p not in before]
        if not missing:
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise Unavailable(f"SLURM packages {missing} are not installed and cannot be "
                              f"(needs root and apt-get); install them: apt-get install "
                              f"{' '.join(PACKAGES)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing)
        if _run(*install, check=False, env=env, timeout=600).returncode != 0:
            _run("apt-get", "update", "-qq", check=False, env=env, timeout=600)
            result = _run(*install, check=False, env=env, timeout=600)
            if result.returncode != 0:
                raise Unavailable(f"apt-get install {' '.join(missing)} failed: "
                                  f"{result.stderr.strip()[-300:]}")
        self.installed = sorted(_installed_packages() - before)  # with their dependencies

    def _write_config(self) -> None:
        devices = []
        for i in range(self.gpus):  # slurmd refuses plain files as GPU devices
            device = self.folder / f"fakegpu{i}"
            if not device.exists():
                os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))  # like /dev/null
            devices.append(device)
        for name in ("state", "spool"):
            (self.folder / name).mkdir(exist_ok=True)
        cpus = os.cpu_count() or 1
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
        f = self.folder
        slurm_conf = f"""\
ClusterName=mnemutest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={f}/state
SlurmdSpoolDir={f}/spool
SlurmctldPidFile={f}/slurmctld.pid
SlurmdPidFile={f}/slurmd.pid
SlurmctldLogFile={f}/slurmctld.log
SlurmdLogFile={f}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge={MIN_JOB_AGE}
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        gres_conf = "AutoDetect=off\n" + "".join(
            f"NodeName={self.host} Name=gpu File={d}\n" for d in devices)
        ETC.mkdir(exist_ok=True)
        self.wrote_config = True
        CONFIG_FILES[0].write_text(slurm_conf)
        CONFIG_FILES[1].write_text(gres_conf)

    def _start_munge(self) -> None:
        if _run("pgrep", "-x", "munged", check=False).returncode == 0:
            return  # a running munged serves us as well
        MUNGE_RUN.mkdir(exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            _run("runuser", "-u", "munge", "--", "mungekey", "--create")
        pid_file = MUNGE_RUN / "munged.pid"
        _run("runuser", "-u", "munge", "--", "munged")
        self.started.append(("munged", pid_file))

    def _start(self, daemon: str) -> None:
        result = _run(daemon, check=False)
        if result.returncode != 0:
            raise Unavailable(f"{daemon} did not start: {result.stderr.strip()[-300:]}; see "
                              f"{self.folder}/{daemon}.log")
        self.started.append((daemon, self.folder / f"{daemon}.pid"))

    def _wait_for_node(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            state = _run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.3)
        raise Unavailable(f"the SLURM node did not come up (state {state!r}); see "
                          f"{self.folder}/slurmd.log")

    # --- tearing down ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop what start() started and remove what it wrote or installed."""
        started_munge = any(daemon == "munged" for daemon, _ in self.started)
        for daemon, pid_file in reversed(self.started):
            _stop_daemon(pid_file)
        self.started.clear()
        if self.wrote_config:
            for path in CONFIG_FILES:
                path.unlink(missing_ok=True)
        if self.installed:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            _run("apt-get", "purge", "-y", "-qq", *self.installed, check=False, env=env,
                 timeout=600)
            self.installed = []
        if started_munge:
            shutil.rmtree(MUNGE_RUN, ignore_errors=True)


def _stop_daemon(pid_file: Path, seconds: float = 10) -> None:
    """SIGTERM the daemon named by its pid file, SIGKILL it if it lingers."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
