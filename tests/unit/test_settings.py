from datetime import datetime

import pytest

from service.settings import ConfigError, describe, load_settings


def test_defaults_work_for_the_demo():
    settings = load_settings({})
    assert settings.dataset_names == ["iris_training_dataset"]
    assert settings.dataset_required_tags == ["approved"]
    assert settings.model_name == "iris_classifier"
    assert settings.poll_interval_seconds == 10
    assert settings.start.mode == "now"


def test_lists_are_comma_separated_and_fractions_allowed():
    settings = load_settings(
        {
            "AUTOPILOT_DATASET_NAMES": "a, b ,c",
            "AUTOPILOT_DATASET_REQUIRED_TAGS": "",
            "AUTOPILOT_POLL_INTERVAL_SECONDS": "0.25",
            "AUTOPILOT_LOG_LEVEL": "debug",
        }
    )
    assert settings.dataset_names == ["a", "b", "c"]
    assert settings.dataset_required_tags == []
    assert settings.poll_interval_seconds == 0.25
    assert settings.log_level == "DEBUG"


def test_start_from_accepts_an_iso_time_and_stores_it_as_naive_utc():
    settings = load_settings({"AUTOPILOT_START_FROM": "2026-03-01T12:00:00+02:00"})
    assert settings.start.since == datetime(2026, 3, 1, 10, 0, 0)


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_POLL_INTERVAL_SECONDS": "-1",
                "AUTOPILOT_MAX_CONCURRENT_RUNS": "two",
                "AUTOPILOT_PROMOTION_THRESHOLD": "nan",
                "AUTOPILOT_START_FROM": "yesterday",
                "AUTOPILOT_LOG_FORMAT": "xml",
                "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "maybe",
                "AUTOPILOT_DATASET_NAMES": " , ",
            }
        )
    text = str(caught.value)
    for name in (
        "AUTOPILOT_POLL_INTERVAL_SECONDS='-1'",
        "AUTOPILOT_MAX_CONCURRENT_RUNS='two'",
        "AUTOPILOT_PROMOTION_THRESHOLD='nan'",
        "AUTOPILOT_START_FROM='yesterday'",
        "AUTOPILOT_LOG_FORMAT='xml'",
        "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION='maybe'",
        "AUTOPILOT_DATASET_NAMES",
    ):
        assert name in text
    assert len(caught.value.problems) == 7


def test_unknown_autopilot_variable_is_reported_with_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        load_settings({"AUTOPILOT_PROMOTION_TRESHOLD": "0.8", "OTHER_VARIABLE": "x"})
    (problem,) = caught.value.problems
    assert problem.startswith("AUTOPILOT_PROMOTION_TRESHOLD: unknown setting")
    assert "did you mean AUTOPILOT_PROMOTION_THRESHOLD?" in problem


def test_check_config_output_never_shows_store_secrets():
    environ = {"ZENML_STORE_API_KEY": "ZENKEY_supersecret", "ZENML_STORE_URL": "http://z:8080"}
    shown = describe(load_settings({}), environ)
    assert "ZENKEY_supersecret" not in str(shown)
    assert shown["ZENML_STORE_API_KEY"] == "<redacted>"
    assert shown["ZENML_STORE_URL"] == "http://z:8080"


def test_api_key_file_must_be_readable_and_not_empty(tmp_path):
    missing = tmp_path / "nope"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, message in ((missing, "cannot read"), (empty, "empty")):
        with pytest.raises(ConfigError) as caught:
            load_settings({"AUTOPILOT_ZENML_API_KEY_FILE": str(path)})
        assert "AUTOPILOT_ZENML_API_KEY_FILE" in str(caught.value)
        assert message in str(caught.value)
    good = tmp_path / "key"
    good.write_text("ZENKEY_abc\n")
    assert load_settings({"AUTOPILOT_ZENML_API_KEY_FILE": str(good)}).zenml_api_key_file == good


def test_http_port_must_be_a_port():
    with pytest.raises(ConfigError, match="AUTOPILOT_HTTP_PORT"):
        load_settings({"AUTOPILOT_HTTP_PORT": "70000"})
