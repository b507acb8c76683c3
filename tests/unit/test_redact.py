"""Credentials never leave the daemon in a URL: what `check-config` prints and every log line."""

from __future__ import annotations

import io
import json

import pytest

from service import redact as redact_module
from service.logs import configure, get_logger
from service.redact import redact_all, redact_text, redact_url, register_secret, url_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://autopilot:s3cr3t@db:3306/zenml", "mysql://autopilot:***@db:3306/zenml"),
        ("https://:s3cr3t@zenml.example.com/api", "https://:***@zenml.example.com/api"),
        ("mysql://u:p@ss@db/zenml?ssl_ca=/ca.pem", "mysql://u:***@db/zenml?ssl_ca=/ca.pem"),
        (
            "https://zenml.example.com/x?a=1&password=s3cr3t&Token=s3cr3t#top",
            "https://zenml.example.com/x?a=1&password=***&Token=***#top",
        ),
        ("https://user@zenml.example.com", "https://user@zenml.example.com"),
        ("sqlite:////var/lib/zenml/zenml.db", "sqlite:////var/lib/zenml/zenml.db"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("<embedded local store>", "<embedded local store>"),
    ],
)
def test_a_url_keeps_where_it_points_and_loses_its_secrets(url, shown):
    assert redact_url(url) == shown
    assert "s3cr3t" not in redact_url(url)


def test_every_url_in_a_text_is_redacted():
    text = "can't reach mysql://u:pw1@db/z (then tried 'https://a:pw2@h?token=pw3'), giving up"
    assert redact_text(text) == (
        "can't reach mysql://u:***@db/z (then tried 'https://a:***@h?token=***'), giving up"
    )


def test_the_password_of_a_url_is_found_to_be_registered_as_a_secret():
    assert url_password("mysql://u:s3cr3t@db/zenml") == "s3cr3t"
    assert url_password("https://u@h") is None
    assert url_password(None) is None


def test_no_log_line_holds_a_urls_password():
    stream = io.StringIO()
    configure("json", "INFO", stream=stream)
    get_logger().error(
        "store.unavailable",
        error="OperationalError: can't connect to mysql://autopilot:s3cr3t@db:3306/zenml",
        store_url="mysql://autopilot:s3cr3t@db:3306/zenml",
    )
    (line,) = stream.getvalue().splitlines()
    assert "s3cr3t" not in line
    assert json.loads(line)["store_url"] == "mysql://autopilot:***@db:3306/zenml"


def test_a_registered_secret_is_masked_in_every_field_of_a_log_line_nested_ones_too(monkeypatch):
    monkeypatch.setattr(redact_module, "_secrets", set())
    register_secret("ZENKEY_s3cr3t")
    register_secret("abc")  # too short to mask without masking ordinary words
    stream = io.StringIO()
    configure("json", "INFO", stream=stream)
    get_logger().info(
        "training.launched",
        error="abc: rejected ZENKEY_s3cr3t",
        parameters={"token": "ZENKEY_s3cr3t", "urls": ["mysql://u:pw@db/x"]},
    )
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert "ZENKEY_s3cr3t" not in line and "pw" not in line
    assert event["error"] == "abc: rejected <redacted>"
    assert event["parameters"] == {"token": "<redacted>", "urls": ["mysql://u:***@db/x"]}
    assert redact_all(("ZENKEY_s3cr3t", 3)) == ("<redacted>", 3)
