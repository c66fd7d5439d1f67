"""The broker's jars: fetched once from Maven Central with the package's pom, then cached."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_MARKER = ".fetched"


def pom_text() -> str:
    """The pom.xml shipped with this package (the list of the broker's artifacts)."""
    return resources.files(__package__).joinpath("pom.xml").read_text(encoding="utf-8")


def log4j2_config_text() -> str:
    """The console/WARN log4j2 config shipped with this package."""
    return resources.files(__package__).joinpath("log4j2.properties").read_text(encoding="utf-8")


def pinned_kafka_version() -> str:
    """The Kafka version pinned in pom.xml (its single source of truth)."""
    version = ET.fromstring(pom_text()).findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise RuntimeError("connectors/kafka_broker/pom.xml has no <kafka.version> property")
    return version


KAFKA_VERSION = pinned_kafka_version()


def kafka_home() -> Path:
    """Where the jars are cached: $MARKOV_KAFKA_HOME, else ~/.cache/markov/kafka-<version>."""
    override = os.environ.get("MARKOV_KAFKA_HOME")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "markov" / f"kafka-{KAFKA_VERSION}"


def pom_digest(pom: str) -> str:
    """The marker's content for `pom`: a refetch happens whenever the pom changes."""
    return hashlib.sha256(pom.encode("utf-8")).hexdigest()


def is_fetched(home: Path | None = None) -> bool:
    """True when `home`/libs holds the jars of the current pom (the marker names its hash)."""
    home = home or kafka_home()
    marker = home / _MARKER
    return (
        marker.is_file()
        and marker.read_text(encoding="utf-8").strip() == pom_digest(pom_text())
        and (home / "libs").is_dir()
    )


def fetch_jars(home: Path | None = None, *, quiet: bool = True) -> Path:
    """Download the broker's jars into `home`/libs (once) and return that directory.

    Runs `mvn dependency:copy-dependencies` on a copy of the package's pom. Idempotent and
    immediate when the marker file matches the pom; safe when several processes call it at
    once (a file lock serialises them and the libs dir is swapped in whole).
    """
    home = home or kafka_home()
    libs = home / "libs"
    if is_fetched(home):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            "Maven (mvn) is not on PATH: it is needed once to fetch the Kafka broker's jars "
            "from Maven Central (install Maven 3.8+, e.g. `apt-get install maven`)"
        )
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_fetched(home):  # another process fetched while we waited for the lock
            return libs
        pom = pom_text()
        (home / "pom.xml").write_text(pom, encoding="utf-8")
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            *(["-q"] if quiet else []),
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()[-30:]
            raise RuntimeError(
                f"fetching the Kafka {KAFKA_VERSION} jars failed (exit {result.returncode}): "
                f"{' '.join(cmd)}\n" + "\n".join(output)
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (home / _MARKER).write_text(pom_digest(pom) + "\n", encoding="utf-8")
    return libs


def libs_size_bytes(libs: Path) -> int:
    """Total size of the jars in `libs`."""
    return sum(jar.stat().st_size for jar in libs.glob("*.jar"))


def java_executable() -> str:
    """$JAVA_HOME/bin/java if set, else `java` from PATH; Kafka 4.x needs Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "Java is not on PATH (and JAVA_HOME is unset): the Kafka 4.x broker needs Java 17+ "
            "(e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    return java
