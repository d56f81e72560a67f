"""The deployment recipes in deploy/ are valid and do what deploy/README.md promises.

Each recipe is checked with the real tool where this machine has it:
systemd-analyze (unit files, timer calendar, hardening score), caddy (Caddyfile
validity, and the headers it really sends, on loopback), hadolint (Dockerfile),
check-jsonschema's bundled schemas (compose.yaml, the GitHub workflow; no network).
A test skips, saying why, only when its tool is missing.  What no tool here can
run (a Docker build, a GitHub Actions run) is checked structurally.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCKER = DEPLOY / "docker"
WORKFLOW = DEPLOY / "github-actions" / "aggregator.yml"
BIN = Path(sys.executable).parent  # the venv's tools (check-jsonschema, hadolint)

INSTALLED_AGGREGATOR = "/opt/aggregator/bin/aggregator"  # where deploy/README.md installs it
UNITS = ["aggregator.service", "aggregator-update.service", "aggregator-update.timer"]
SERVICES = ["aggregator.service", "aggregator-update.service"]


def load_yaml(path: Path) -> object:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def tool(name: str) -> str:
    """The path of a command-line tool (venv first), or skip the test saying it is missing."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"{name} is not installed on this machine")
    return found


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


# --------------------------------------------------------------------------- systemd


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}, keeping repeated keys in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(name: str, section: str, key: str) -> list[str]:
    return [v for k, v in unit(name)[section] if k == key]


@pytest.fixture
def units_with_fake_binary(tmp_path: Path) -> Path:
    """Copies of the units whose ExecStart points at an executable that exists here.

    `systemd-analyze verify` refuses a unit whose program does not exist; on this
    machine the aggregator is not installed at /opt/aggregator.
    """
    fake = tmp_path / "bin" / "aggregator"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        (units / name).write_text(text.replace(INSTALLED_AGGREGATOR, str(fake)))
    return units


@pytest.mark.parametrize("name", UNITS)
def test_unit_file_passes_systemd_analyze_verify(name: str, units_with_fake_binary: Path) -> None:
    analyze = tool("systemd-analyze")
    path = units_with_fake_binary / name
    result = run(analyze, "verify", str(path))
    assert result.returncode == 0, result.stderr
    # verify reports unknown keys and bad values on stderr but still exits 0.
    ours = [line for line in result.stderr.splitlines() if str(units_with_fake_binary) in line]
    assert ours == [], "\n".join(ours)


@pytest.mark.parametrize("name", SERVICES)
def test_service_hardening_scores_ok_in_systemd_analyze_security(
    name: str, units_with_fake_binary: Path
) -> None:
    analyze = tool("systemd-analyze")
    # --threshold is on a 0-100 scale: 20 is "2.0 OK" in the printed summary.
    result = run(
        analyze, "security", "--offline=yes", "--threshold=20", str(units_with_fake_binary / name)
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_timer_calendar_fires_every_quarter_hour() -> None:
    analyze = tool("systemd-analyze")
    (calendar,) = values("aggregator-update.timer", "Timer", "OnCalendar")
    result = run(analyze, "calendar", "--iterations=3", calendar)
    assert result.returncode == 0, result.stderr
    minutes = re.findall(r"(?:Next elapse|Iter\. #\d):.* \d\d:(\d\d):00", result.stdout)
    assert [int(m) % 15 for m in minutes] == [0, 0, 0]


def test_long_running_service_runs_aggregator_run_as_dedicated_user() -> None:
    (exec_start,) = values("aggregator.service", "Service", "ExecStart")
    assert exec_start == f"{INSTALLED_AGGREGATOR} -c /etc/aggregator/feeds.yaml run"
    assert values("aggregator.service", "Service", "User") == ["aggregator"]
    assert values("aggregator.service", "Service", "Group") == ["aggregator"]
    assert values("aggregator.service", "Install", "WantedBy") == ["multi-user.target"]


def test_long_running_service_restarts_on_failure_stops_on_sigterm_reloads_on_sighup() -> None:
    service = dict(unit("aggregator.service")["Service"])
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad feeds.yaml: restarting cannot help
    assert service["KillSignal"] == "SIGTERM"
    assert re.fullmatch(r"\d+s", service["TimeoutStopSec"])
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"


# Every service must have each of these (key, value); the comments in
# aggregator.service say why each one is there.
HARDENING = [
    ("User", "aggregator"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", ""),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("SystemCallFilter", "@system-service"),
    ("RestrictSUIDSGID", "yes"),
    ("EnvironmentFile", "-/etc/aggregator/env"),
]


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize(("key", "value"), HARDENING, ids=[k for k, _ in HARDENING])
def test_service_is_hardened(name: str, key: str, value: str) -> None:
    assert value in values(name, "Service", key)


def readme_setting(key: str) -> str:
    """The value deploy/README.md tells systemd users to give a feeds.yaml setting."""
    match = re.search(rf"^\s*{key}: (/var/\S+)$", (DEPLOY / "README.md").read_text(), re.M)
    assert match, f"deploy/README.md does not say what to set {key} to"
    return match.group(1)


@pytest.mark.parametrize("name", SERVICES)
def test_service_may_write_exactly_the_database_and_output_folders_the_readme_sets(
    name: str,
) -> None:
    (writable,) = values(name, "Service", "ReadWritePaths")
    database = Path(readme_setting("database"))
    output = Path(readme_setting("output"))
    assert sorted(writable.split()) == sorted([str(database.parent), str(output)])
    # systemd makes (and hands to the user) the database folder; ProtectSystem=strict
    # would otherwise leave it read-only.
    assert values(name, "Service", "StateDirectory") == [database.parent.name]


def test_oneshot_service_runs_update_then_build_then_digest() -> None:
    assert values("aggregator-update.service", "Service", "Type") == ["oneshot"]
    steps = values("aggregator-update.service", "Service", "ExecStart")
    prefix = f"{INSTALLED_AGGREGATOR} -c /etc/aggregator/feeds.yaml "
    assert steps == [prefix + "update", prefix + "build", prefix + "digest --send"]


def test_timer_starts_the_oneshot_every_15_minutes_persistently_with_jitter() -> None:
    timer = dict(unit("aggregator-update.timer")["Timer"])
    assert timer["OnCalendar"] == "*:0/15"
    assert timer["Persistent"] == "true"
    assert timer["RandomizedDelaySec"]
    assert timer["Unit"] == "aggregator-update.service"
    assert values("aggregator-update.timer", "Install", "WantedBy") == ["timers.target"]


def test_environment_file_example_holds_the_digest_password_for_a_mode_600_file() -> None:
    text = (SYSTEMD / "env.example").read_text()
    assert re.search(r"^DIGEST_SMTP_PASSWORD=", text, re.M)
    assert "/etc/aggregator/env" in text and "-m 600" in text


# --------------------------------------------------------------------------- Docker


def dockerfile_commands() -> list:
    """The Dockerfile as parsed by BuildKit's own parser (the `dockerfile` package)."""
    dockerfile = pytest.importorskip("dockerfile", reason="the dockerfile parser is not installed")
    return list(dockerfile.parse_file(str(DOCKER / "Dockerfile")))


def final_stage() -> list:
    commands = dockerfile_commands()
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return commands[last_from:]


def compose() -> dict:
    data = load_yaml(DOCKER / "compose.yaml")
    assert isinstance(data, dict)
    return data


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    result = run(hadolint, "--no-color", str(DOCKER / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_on_a_pinned_python_3_11_slim_image() -> None:
    stages = set()
    for command in dockerfile_commands():
        if command.cmd != "FROM":
            continue
        image = command.value[0]
        if image not in stages:
            name, _, tag = image.partition(":")
            assert name == "python" and tag.startswith("3.11-slim"), image
        if len(command.value) == 3:  # FROM image AS name
            stages.add(command.value[2])


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [c.value[0] for c in final_stage() if c.cmd == "USER"]
    assert users, "the final stage never sets USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_copies_only_paths_that_exist_in_the_repository() -> None:
    # compose.yaml builds with the repository as the context.
    for command in dockerfile_commands():
        if command.cmd in {"COPY", "ADD"} and not any(
            f.startswith("--from") for f in command.flags
        ):
            for source in command.value[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_dockerignore_lets_every_copied_path_through() -> None:
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert "*" in lines  # everything else stays out (.git, .venv, databases, secrets)
    for command in dockerfile_commands():
        if command.cmd == "COPY" and not command.flags:
            for source in command.value[:-1]:
                assert source.rstrip("/") in allowed, f"{source} is excluded by the dockerignore"


def test_final_image_installs_the_package_from_prebuilt_wheels_without_build_tools() -> None:
    runs = [" ".join(c.value) for c in final_stage() if c.cmd == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1
    assert "--no-index" in installs[0] and "nhs-campaign-aggregator" in installs[0]
    for command in runs:
        assert not re.search(r"apt-get|gcc|build-essential|python3-dev", command), command


def test_dockerfile_keeps_data_in_a_volume_and_runs_aggregator_run_in_exec_form() -> None:
    commands = final_stage()
    volumes = [v for c in commands if c.cmd == "VOLUME" for v in c.value]
    assert "/data" in volumes
    (cmd,) = [c for c in commands if c.cmd == "CMD"]
    assert cmd.json, "CMD should be exec form so SIGTERM reaches the aggregator"
    assert list(cmd.value) == ["aggregator", "-c", "/config/feeds.yaml", "run"]
    healthchecks = [c for c in commands if c.cmd == "HEALTHCHECK"]
    for check in healthchecks:
        assert check.json and "--fail-on-error" in check.value


def test_compose_file_matches_the_compose_specification() -> None:
    checker = tool("check-jsonschema")
    result = run(checker, "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_builds_the_aggregator_image_from_the_repository() -> None:
    build = compose()["services"]["aggregator"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"


def test_compose_runs_the_aggregator_as_the_dockerfile_user() -> None:
    service = compose()["services"]["aggregator"]
    users = [c.value[0] for c in final_stage() if c.cmd == "USER"]
    assert service["user"] == users[-1]
    assert service["user"].split(":")[0] not in {"root", "0"}
    assert service["restart"] == "unless-stopped"
    assert service["environment"]["DIGEST_SMTP_PASSWORD"] == "${DIGEST_SMTP_PASSWORD:-}"


def mounts(service: dict) -> list[dict]:
    """A service's volumes in compose's long form, whichever form the file uses."""
    out = []
    for entry in service["volumes"]:
        if isinstance(entry, dict):
            out.append(entry)
            continue
        source, target, *mode = entry.split(":")
        out.append({"source": source, "target": target, "read_only": mode == ["ro"]})
    return out


def test_compose_serves_the_output_volume_read_only_with_caddy() -> None:
    data = compose()
    aggregator, caddy = data["services"]["aggregator"], data["services"]["caddy"]
    assert caddy["image"] == "caddy:2-alpine"
    # feeds.yaml's output (deploy/README.md: `output: /site`) is a named volume ...
    by_target = {m["target"]: m for m in mounts(aggregator)}
    assert "output: /site" in (DEPLOY / "README.md").read_text()
    site = by_target["/site"]["source"]
    assert site in data["volumes"]
    assert by_target["/data"]["source"] in data["volumes"]
    assert by_target["/config"]["read_only"]
    # ... that Caddy mounts read-only where the Caddyfile's SITE_ROOT points.
    (shared,) = [m for m in mounts(caddy) if m["source"] == site]
    assert shared["read_only"]
    assert caddy["environment"]["SITE_ROOT"] == shared["target"]
    caddyfile = next(m for m in mounts(caddy) if m["target"] == "/etc/caddy/Caddyfile")
    assert (DOCKER / caddyfile["source"]).resolve() == DOCKER / "Caddyfile"


# --------------------------------------------------------------------------- Caddy

# (file, Content-Type, Cache-Control) the Caddyfile must give each kind of output.
SERVED = [
    ("index.html", "text/html; charset=utf-8", "public, max-age=60"),
    ("", "text/html; charset=utf-8", "public, max-age=60"),
    ("health.html", "text/html; charset=utf-8", "public, max-age=60"),
    ("feed.atom", "application/atom+xml; charset=utf-8", "public, max-age=300"),
    ("feed.rss", "application/rss+xml; charset=utf-8", "public, max-age=300"),
    ("feed.json", "application/feed+json; charset=utf-8", "public, max-age=300"),
    ("feeds.opml", "text/x-opml; charset=utf-8", "public, max-age=300"),
    ("digest.eml", "message/rfc822", "public, max-age=300"),
    ("style.css", "text/css; charset=utf-8", "public, max-age=86400"),
]


def caddy_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Caddy keeps its state under $HOME / XDG folders: point them at tmp_path."""
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **extra,
    }


def test_caddyfile_is_valid_for_caddy(tmp_path: Path) -> None:
    caddy = tool("caddy")
    result = run(
        caddy,
        "validate",
        "--adapter",
        "caddyfile",
        "--config",
        str(DOCKER / "Caddyfile"),
        env=caddy_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr


def test_caddyfile_is_formatted_as_caddy_fmt_writes_it() -> None:
    caddy = tool("caddy")
    result = run(caddy, "fmt", str(DOCKER / "Caddyfile"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (DOCKER / "Caddyfile").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def caddy_site(tmp_path_factory: pytest.TempPathFactory):
    """The Caddyfile served by the real caddy on loopback, over a folder of sample outputs."""
    caddy = tool("caddy")
    tmp_path = tmp_path_factory.mktemp("caddy")
    root = tmp_path / "site"
    root.mkdir()
    for name, _, _ in SERVED:
        if name:
            (root / name).write_text(f"sample {name}\n")
    port = free_port()
    env = caddy_env(
        tmp_path,
        SITE_ADDRESS=f"http://127.0.0.1:{port}",
        SITE_ROOT=str(root),
        CADDY_ADMIN="off",
    )
    log = tmp_path / "caddy.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [caddy, "run", "--adapter", "caddyfile", "--config", str(DOCKER / "Caddyfile")],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(200):  # bounded: at most ~10 s for caddy to start listening
            if process.poll() is not None:
                pytest.fail(f"caddy exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"caddy did not start listening: {log.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("name", "content_type", "cache"), SERVED, ids=[s[0] or "/" for s in SERVED]
)
def test_caddy_serves_each_output_with_its_content_type_and_cache_lifetime(
    caddy_site: str, name: str, content_type: str, cache: str
) -> None:
    request = urllib.request.Request(caddy_site + name, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"] == cache
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [
        ("atom", "application/atom+xml"),
        ("rss", "application/rss+xml"),
        ("json", "application/feed+json"),
        ("opml", "text/x-opml"),
        ("eml", "message/rfc822"),
    ],
)
def test_caddyfile_names_the_content_type_of_every_feed_format(
    extension: str, content_type: str
) -> None:
    # Static twin of the loopback test above, for machines without caddy.
    text = (DOCKER / "Caddyfile").read_text()
    matcher = re.search(rf"^\s*@(\w+) path \*\.{extension}$", text, re.M)
    assert matcher, f"no matcher for *.{extension}"
    assert f'header @{matcher.group(1)} Content-Type "{content_type}' in text


# --------------------------------------------------------------------------- GitHub Actions


def workflow() -> dict:
    data = load_yaml(WORKFLOW)
    assert isinstance(data, dict)
    return data


def steps() -> list[dict]:
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def step_using(action: str) -> dict:
    (step,) = [s for s in steps() if s.get("uses", "").startswith(action + "@")]
    return step


def bundled_setting(key: str) -> str:
    settings = load_yaml(REPO / "feeds.yaml")["settings"]  # type: ignore[index]
    return str(settings[key])


def test_workflow_matches_the_github_workflow_schema() -> None:
    checker = tool("check-jsonschema")
    result = run(checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_every_30_minutes_and_on_demand() -> None:
    triggers = workflow()["on"]
    assert triggers["schedule"] == [{"cron": "*/30 * * * *"}]
    assert "workflow_dispatch" in triggers


def test_workflow_may_deploy_pages_and_never_runs_twice_at_once() -> None:
    data = workflow()
    assert data["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert data["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    (job,) = data["jobs"].values()
    assert job["environment"]["name"] == "github-pages"


def test_workflow_installs_the_package_on_python_3_11() -> None:
    assert step_using("actions/checkout")
    assert step_using("actions/setup-python")["with"]["python-version"] == "3.11"
    assert any(s.get("run") == "python -m pip install ." for s in steps())


def test_workflow_runs_update_build_digest_in_order_then_saves_the_store() -> None:
    names = [s.get("run") or s["uses"].split("@")[0] for s in steps()]
    order = [
        "actions/cache/restore",
        "aggregator update",
        "aggregator build",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
        "aggregator digest --send",
        "actions/cache/save",
    ]
    assert [n for n in names if n in order] == order


def test_workflow_cache_key_rolls_forward_and_restores_the_newest_store() -> None:
    restore, save = step_using("actions/cache/restore"), step_using("actions/cache/save")
    key = restore["with"]["key"]
    assert "${{ github.run_id }}" in key  # a cache entry is immutable: each run saves a new one
    assert key.startswith(restore["with"]["restore-keys"])
    assert save["with"]["key"] == key
    assert save["if"] == "always()"  # keep what was fetched even when a later step failed
    # The cached folder is the one the bundled feeds.yaml keeps its database in.
    database = Path(bundled_setting("database"))
    assert restore["with"]["path"] == save["with"]["path"] == str(database.parent)


def test_workflow_publishes_the_output_folder_of_the_bundled_feeds_yaml() -> None:
    upload = step_using("actions/upload-pages-artifact")
    assert upload["with"]["path"] == bundled_setting("output")
    assert step_using("actions/deploy-pages")["id"] == "deployment"


def test_workflow_gives_the_smtp_password_from_secrets_to_the_digest_step_only() -> None:
    secret = "${{ secrets.DIGEST_SMTP_PASSWORD }}"
    holders = [s for s in steps() if secret in json.dumps(s)]
    assert [s.get("run") for s in holders] == ["aggregator digest --send"]
    assert holders[0]["env"] == {"DIGEST_SMTP_PASSWORD": secret}


def test_workflow_explains_the_cache_limits_and_the_data_branch_alternative() -> None:
    text = WORKFLOW.read_text()
    assert "7 days" in text
    assert "data` branch" in text and "DATA BRANCH" in text


# --------------------------------------------------------------------------- all recipes

# The commands and flags the recipes may use.  `run` and `digest` are being added
# to the CLI now, so this is the planned set rather than `aggregator --help`; the
# CLI's own tests (every command has help) live with the CLI, not here.
GLOBAL_FLAGS = {"-c", "--config", "-v", "--verbose", "-q", "--quiet", "--log-format"}
COMMAND_FLAGS: dict[str, set[str]] = {
    "check": set(),
    "update": {"--all", "--wait"},
    "build": set(),
    "status": {"--json", "--fail-on-error", "--threshold"},
    "demo": {"--output", "--serve", "--port"},
    "serve": {"--port", "--host"},
    "digest": {"--send"},
    "run": {"--tick"},
}
RECIPES = [
    DEPLOY / "README.md",
    *(SYSTEMD / name for name in UNITS),
    SYSTEMD / "env.example",
    DOCKER / "Dockerfile",
    DOCKER / "compose.yaml",
    WORKFLOW,
]
# An invocation: the program by its path (/opt/aggregator/bin/aggregator, anywhere),
# or by name where a command starts: after a backtick, a shell separator, a
# workflow `run:` or `docker compose exec aggregator`.
INVOCATION = re.compile(
    r"(?:\S*/bin/|(?:&&|;|`|run:|exec aggregator)\s*)aggregator\s+([^`&;|#\n]*)"
)


def invocations(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    if path.name == "Dockerfile":  # exec form: ["aggregator", "-c", ...] -> `aggregator -c ...`
        text = re.sub(r'\["aggregator", (".*?")\]', lambda m: f"`aggregator {m.group(1)}`", text)
        text = text.replace('", "', " ")
    return [match.group(1).replace('"', " ").split() for match in INVOCATION.finditer(text)]


def test_every_aggregator_command_in_the_recipes_exists_with_its_flags() -> None:
    seen: set[str] = set()
    for path in RECIPES:
        for words in invocations(path):
            where = f"{path.relative_to(REPO)}: aggregator {' '.join(words)}"
            command = None
            rest = iter(words)
            for word in rest:
                if command is None and word in {"-c", "--config", "--log-format"}:
                    next(rest, None)  # the flag's value
                elif command is None and word.startswith("-"):
                    assert word in GLOBAL_FLAGS, where
                elif command is None:
                    command = word
                    assert command in COMMAND_FLAGS, where
                elif word.startswith("-"):
                    assert word in COMMAND_FLAGS[command], where
            if command:
                seen.add(command)
    # The extractor really found the recipes' commands (so this cannot pass on nothing).
    assert {"check", "update", "build", "digest", "status", "run"} <= seen
