"""Settings validated at start: every refusal names the setting, where it came from and what is allowed."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from server.config import PROJECT_DIR, ConfigError, load_config
from tests.processes import server_command, server_environment


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("DASHBOARD_PORT", "abc", "setting port = 'abc' (from environment variable DASHBOARD_PORT): must be a whole number"),
    ("DASHBOARD_PORT", "70000", "setting port = '70000' (from environment variable DASHBOARD_PORT): "
                                "must be at least 1 and at most 65535"),
    ("DASHBOARD_HEARTBEAT_SECONDS", "-1", "setting heartbeat_seconds = '-1' (from environment variable "
                                          "DASHBOARD_HEARTBEAT_SECONDS): must be more than 0"),
    ("DASHBOARD_CHANGES_POLL_SECONDS", "0", "changes_poll_seconds = '0' (from environment variable "
                                            "DASHBOARD_CHANGES_POLL_SECONDS): must be more than 0"),
    ("DASHBOARD_REQUESTS_PER_SECOND", "nan", "requests_per_second = 'nan' (from environment variable "
                                             "DASHBOARD_REQUESTS_PER_SECOND): must be a finite number"),
    ("DASHBOARD_WORKERS", "-1", "workers = '-1' (from environment variable DASHBOARD_WORKERS): must be at least 0"),
    ("DASHBOARD_LOG_FORMAT", "xml", "log_format = 'xml' (from environment variable DASHBOARD_LOG_FORMAT): "
                                    "must be one of plain, json"),
    ("DASHBOARD_SESSION_COOKIE_SECURE", "maybe", "session_cookie_secure = 'maybe' (from environment variable "
                                                 "DASHBOARD_SESSION_COOKIE_SECURE): must be true or false"),
    ("DASHBOARD_METRICS_ALLOW", "10.0.0.0/8,ward", "'ward' is not a network"),
    ("DASHBOARD_TRUSTED_PROXIES", "127.0.0.1/32,nginx", "trusted_proxies = '127.0.0.1/32,nginx' (from environment "
                                                       "variable DASHBOARD_TRUSTED_PROXIES): 'nginx' is not a network"),
    ("DASHBOARD_ALLOWED_HOSTS", "ward.example,https://ward.example", "allowed_hosts = 'ward.example,https://ward.example' "
                                "(from environment variable DASHBOARD_ALLOWED_HOSTS): 'https://ward.example' is not a host name"),
    ("DASHBOARD_ALLOWED_HOSTS", "ward.example:443", "'ward.example:443' is not a host name"),
    ("DASHBOARD_DB_POOL_MIN", "30", "db_pool_min = '30' (from environment variable DASHBOARD_DB_POOL_MIN): "
                                    "must be at most db_pool_max (20)"),
    ("DASHBOARD_CHANGES_LISTENER_GRACE_SECONDS", "5", "changes_listener_grace_seconds = '5' (from environment "
                                                      "variable DASHBOARD_CHANGES_LISTENER_GRACE_SECONDS): must be "
                                                      "more than changes_poll_seconds (5)"),
])
def test_a_refused_variable_is_named_with_what_is_allowed(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, {variable: value})
    assert message in str(refused.value)


def test_allowed_hosts_default_to_the_bind_address_localhost_and_the_allowed_origins() -> None:
    from server.config import allowed_hosts
    assert allowed_hosts(load_config(None, {})) == ("127.0.0.1", "localhost", "[::1]")
    assert allowed_hosts(load_config(None, {"DASHBOARD_HOST": "::", "DASHBOARD_ALLOWED_ORIGINS":
                                            "https://Ward.example,http://10.0.0.5:8080"})) == (
        "[::]", "localhost", "127.0.0.1", "[::1]", "ward.example", "10.0.0.5")
    # Set, it is the whole list (Django's ALLOWED_HOSTS), lower case.
    assert allowed_hosts(load_config(None, {"DASHBOARD_ALLOWED_HOSTS": "Ward.example, .lan,*"})) == (
        "ward.example", ".lan", "*")


def test_a_refused_file_setting_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('host = "127.0.0.1"\n\n# the box\nmax_page_size = -5\n')
    with pytest.raises(ConfigError, match=rf"setting max_page_size = -5 \(from {path} line 4\): must be more than 0"):
        load_config(path, {})
    path.write_text('heartbeat_secnds = 3\n')
    with pytest.raises(ConfigError, match=rf"setting heartbeat_secnds = 3 \(from {path} line 1\): no such setting"):
        load_config(path, {})
    path.write_text('port = \n')
    with pytest.raises(ValueError, match=rf"^config file {path}: Invalid value \(at line 1, column 8\)$"):
        load_config(path, {})
    path.write_text('port = 9000.5\n')
    with pytest.raises(ConfigError, match="must be a whole number"):
        load_config(path, {})
    # The variable wins over the file, and is the source named.
    path.write_text('port = 9000\n')
    with pytest.raises(ConfigError, match="from environment variable DASHBOARD_PORT"):
        load_config(path, {"DASHBOARD_PORT": "0"})
    assert load_config(path, {"DASHBOARD_PORT": "9001"}).port == 9001


def test_secrets_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"DASHBOARD_DB_POOL_MAX": "0", "DASHBOARD_DATABASE_URL": "postgresql://u:pw@db/x"})
    assert "pw" not in str(refused.value)


def test_the_shipped_config_is_valid_and_its_cookie_works_over_plain_http() -> None:
    config = load_config(PROJECT_DIR / "scripts/config.toml", {})
    assert config.session_cookie_secure is False
    assert config.trusted_proxies == "127.0.0.1/32,::1/128"  # nginx on this box (tests/test_nginx.py)


def test_the_command_prints_one_line_and_exits_1() -> None:
    for args, env, text in [(("users",), {"DASHBOARD_HEARTBEAT_SECONDS": "-1"}, "heartbeat_seconds"),
                            (("serve", "--port", "0"), {}, "setting port = 0 (from --port)")]:
        result = subprocess.run(server_command(*args), capture_output=True, text=True, timeout=60,
                                env=server_environment(None, env))
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("dashboard-server: setting ") and text in result.stderr
