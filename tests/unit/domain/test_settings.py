"""Settings: names derived in one place, values validated at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupcheck.core.settings import Settings, SettingsError


def test_defaults_are_the_embedded_mode() -> None:
    settings = Settings.from_env({})
    assert (settings.store, settings.index, settings.data_dir) == ("sqlite", "local", Path("data"))
    assert settings.allow_loopback_urls is False
    assert settings.sqlite_path == Path("data/dupcheck.sqlite3")


def test_values_are_parsed_from_strings() -> None:
    settings = Settings.from_env(
        {
            "DUPCHECK_ALLOW_LOOPBACK_URLS": "true",
            "DUPCHECK_ALLOWED_HOSTS": " Images.Example.com., .cdn.example ",
            "DUPCHECK_PORT": "9000",
            "DUPCHECK_STORE": "dynamodb",
            "UNRELATED": "ignored",
        }
    )
    assert settings.allow_loopback_urls is True
    assert settings.allowed_hosts == ("images.example.com", ".cdn.example")
    assert settings.port == 9000 and settings.store == "dynamodb"


def test_the_old_name_of_the_loopback_switch_is_refused_with_the_new_one() -> None:
    with pytest.raises(SettingsError, match="DUPCHECK_ALLOW_PRIVATE_URLS was renamed DUPCHECK_ALLOW_LOOPBACK_URLS"):
        Settings.from_env({"DUPCHECK_ALLOW_PRIVATE_URLS": "true"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DUPCHECK_PORT", "-1"),
        ("DUPCHECK_STORE", "postgres"),
        ("DUPCHECK_ALLOW_LOOPBACK_URLS", "maybe"),
        ("DUPCHECK_MAX_IMAGE_BYTES", "0"),
        ("DUPCHECK_NOT_A_SETTING", "1"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_env_names_come_from_field_names() -> None:
    assert Settings.env_name("table_name") == "DUPCHECK_TABLE_NAME"
    with pytest.raises(KeyError):
        Settings.env_name("nope")


def test_overrides_win_over_the_environment() -> None:
    assert Settings.from_env({"DUPCHECK_PORT": "9000"}, port=0).port == 0


def test_every_setting_is_documented_in_the_settings_table() -> None:
    # The page the error for an unknown setting names (settings.unknown_setting).
    table = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()
    missing = [Settings.env_name(f) for f in Settings.model_fields if Settings.env_name(f) not in table]
    assert missing == []
