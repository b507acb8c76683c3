from datetime import datetime

import pytest

from service.core.automation import DatasetRole
from service.settings import ConfigError, describe, load_settings


def test_defaults_work_for_the_demo():
    settings = load_settings({})
    (automation,) = settings.automations
    assert automation.name == "default"
    assert automation.dataset_names == ("iris_training_dataset",)
    assert automation.required_tags == ("approved",)
    assert automation.model_name == "iris_classifier"
    # The bundled pipelines, in the same contract as a user's.
    assert automation.training.reference == "pipelines.training:training_pipeline"
    assert automation.training.parameters == {"dataset_version_id": "{{ dataset.id }}"}
    assert automation.inference.parameters == {"inference_dataset_name": "iris_inference_dataset"}
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
    (automation,) = settings.automations
    assert automation.dataset_names == ("a", "b", "c")
    assert automation.required_tags == ()
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


CHURN = "AUTOPILOT_AUTOMATIONS__CHURN__"
IRIS = "AUTOPILOT_AUTOMATIONS__IRIS__"


def test_named_automations_are_read_from_nested_variables(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text("model:\n  name: churn\n  version: sgd\n")
    settings = load_settings(
        {
            "AUTOPILOT_SOURCE_ROOT": str(tmp_path),
            f"{CHURN}DATASET_NAMES": "churn_train",
            f"{CHURN}DATASET_REQUIRED_TAGS": "",
            f"{CHURN}MODEL_NAME": "churn",
            f"{CHURN}TRAINING_PIPELINE": "pipelines.training:training",
            f"{CHURN}TRAINING_CONFIG": "configs/train.yaml",
            f"{CHURN}TRAINING_PARAMETERS": '{"train": "{{ dataset.id }}", "alpha": 0.1}',
            f"{CHURN}PROMOTION_METRIC": "rmse",
            f"{CHURN}PROMOTION_METRIC_ARTIFACT": "model",
            f"{CHURN}PROMOTION_GOAL": "Minimize",
            f"{CHURN}PROMOTION_THRESHOLD": "60",
            "autopilot_automations__Iris__model_name": "iris_classifier",  # any case
            f"{IRIS}DATASET_NAMES": "iris_training_dataset",
        }
    )
    churn, iris = settings.automations
    assert (churn.name, iris.name) == ("churn", "iris")
    assert churn.required_tags == ()
    assert churn.training.source_root == str(tmp_path.resolve())
    assert churn.training.config_path == str(tmp_path / "configs" / "train.yaml")
    assert churn.training.parameters == {"train": "{{ dataset.id }}", "alpha": 0.1}
    assert churn.promotion.goal.value == "minimize"
    assert churn.promotion.metric_artifact == "model"
    assert churn.dataset_stream("churn_train") == "churn/dataset:churn_train"
    # Unset pipelines are the bundled ones, imported from this project, not the source root.
    assert iris.training.reference == "pipelines.training:training_pipeline"
    assert iris.training.source_root != str(tmp_path.resolve())


def test_every_automation_mistake_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_MODEL_NAME": "iris_classifier",  # the single form, mixed in
                f"{CHURN}MODEL_NAME": "shared",
                f"{CHURN}DATASET_NAMES": "a",
                f"{CHURN}MODEL": "x",  # unknown field
                f"{IRIS}MODEL_NAME": "shared",  # the same model twice
                f"{IRIS}DATASET_NAMES": "b",
                f"{IRIS}TRAINING_PARAMETERS": '{"x": "{{ dataset.nope }}"}',
                f"{IRIS}INFERENCE_PARAMETERS": "[1, 2]",
                "AUTOPILOT_AUTOMATIONS__NO_MODEL__DATASET_NAMES": "c",  # missing MODEL_NAME
                "AUTOPILOT_AUTOMATIONS__BAD-NAME__MODEL_NAME": "m",
                "AUTOPILOT_AUTOMATIONS__ORPHAN": "y",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "AUTOPILOT_MODEL_NAME: a single-automation setting cannot be mixed" in problems
    assert f"{CHURN}MODEL: unknown automation field MODEL (did you mean MODEL_NAME?)" in problems
    assert "AUTOPILOT_AUTOMATIONS__NO_MODEL__MODEL_NAME: required for automation 'no_model'" in (
        problems
    )
    assert "AUTOPILOT_AUTOMATIONS__BAD-NAME__MODEL_NAME: automation name 'bad-name'" in problems
    assert "AUTOPILOT_AUTOMATIONS__ORPHAN: expected AUTOPILOT_AUTOMATIONS__<NAME>__<FIELD>" in (
        problems
    )
    assert f"{IRIS}TRAINING_PARAMETERS=" in problems and "unknown placeholder dataset.nope" in (
        problems
    )
    assert f"{IRIS}INFERENCE_PARAMETERS='[1, 2]': expected a JSON object" in problems
    assert len(caught.value.problems) == 7  # the shared model is reported once the rest is fixed


def test_a_model_watched_by_two_automations_is_refused():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                f"{CHURN}MODEL_NAME": "shared",
                f"{CHURN}DATASET_NAMES": "a",
                f"{IRIS}MODEL_NAME": "shared",
                f"{IRIS}DATASET_NAMES": "b",
            }
        )
    (problem,) = caught.value.problems
    assert problem.startswith(f"{CHURN}MODEL_NAME, {IRIS}MODEL_NAME: model 'shared'")


def test_a_config_file_that_does_not_exist_or_is_not_a_mapping_is_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_SOURCE_ROOT": str(tmp_path),
                "AUTOPILOT_TRAINING_PIPELINE": "pipelines.training:training",
                "AUTOPILOT_TRAINING_CONFIG": "missing.yaml",
                "AUTOPILOT_INFERENCE_PIPELINE": "pipelines.inference:inference",
                "AUTOPILOT_INFERENCE_CONFIG": "list.yaml",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "AUTOPILOT_TRAINING_CONFIG='missing.yaml': no such file" in problems
    assert "AUTOPILOT_INFERENCE_CONFIG='list.yaml': a ZenML run configuration must be a YAML" in (
        problems
    )


def test_a_pipeline_reference_needs_module_and_attribute():
    with pytest.raises(ConfigError, match=r"AUTOPILOT_TRAINING_PIPELINE='training'.*module:attr"):
        load_settings({"AUTOPILOT_TRAINING_PIPELINE": "training"})


def test_scoring_datasets_are_per_automation_with_no_tags_required_by_default(tmp_path):
    settings = load_settings(
        {
            f"{CHURN}DATASET_NAMES": "churn_train",
            f"{CHURN}MODEL_NAME": "churn",
            f"{CHURN}SCORING_DATASET_NAMES": "churn_daily, churn_weekly",
            f"{CHURN}INFERENCE_PIPELINE": "pipelines.inference:inference",
            f"{CHURN}INFERENCE_PARAMETERS": '{"rows": "{{ scoring_dataset.id }}"}',
            f"{IRIS}DATASET_NAMES": "iris_training_dataset",
            f"{IRIS}MODEL_NAME": "iris_classifier",
            f"{IRIS}SCORING_DATASET_NAMES": "iris_scoring_dataset",
            f"{IRIS}SCORING_DATASET_REQUIRED_TAGS": "checked",
        }
    )
    churn, iris = settings.automations
    assert churn.scoring_dataset_names == ("churn_daily", "churn_weekly")
    assert churn.scoring_required_tags == ()
    assert churn.dataset_stream("churn_daily", DatasetRole.SCORING) == "churn/scoring:churn_daily"
    assert churn.role_of("churn_daily") is DatasetRole.SCORING
    assert churn.role_of("churn_train") is DatasetRole.TRAINING
    assert iris.scoring_required_tags == ("checked",)
    # The bundled inference pipeline scores exactly the version it was launched for.
    assert iris.inference.parameters == {"inference_dataset_id": "{{ scoring_dataset.id }}"}
    # Without scoring datasets, nothing changes.
    (default,) = load_settings({}).automations
    assert default.scoring_dataset_names == () and default.role_of("x") is None
    single = load_settings({"AUTOPILOT_SCORING_DATASET_NAMES": "iris_scoring_dataset"})
    assert single.automations[0].scoring_dataset_names == ("iris_scoring_dataset",)


def test_a_name_trained_on_and_scored_or_scoring_placeholders_without_scoring_are_refused():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                f"{CHURN}DATASET_NAMES": "churn_train",
                f"{CHURN}MODEL_NAME": "churn",
                f"{CHURN}SCORING_DATASET_NAMES": "other, Churn_Train",  # one artifact on MySQL
                f"{IRIS}DATASET_NAMES": "iris_training_dataset",
                f"{IRIS}MODEL_NAME": "iris_classifier",
                f"{IRIS}INFERENCE_PARAMETERS": '{"rows": "{{ scoring_dataset.run_outputs.x }}"}',
            }
        )
    assert caught.value.problems == [
        f"{CHURN}SCORING_DATASET_NAMES: 'Churn_Train' is also in {CHURN}DATASET_NAMES "
        "('churn_train'): an artifact is either trained on or scored by one automation, not both",
        f"{IRIS}INFERENCE_PARAMETERS: uses {{{{ scoring_dataset.* }}}} but "
        f"{IRIS}SCORING_DATASET_NAMES is unset: name the artifacts to score",
    ]


def test_trigger_policies_and_schedules_per_automation_and_in_the_single_form():
    prefix = "AUTOPILOT_AUTOMATIONS__NIGHTLY__"
    settings = load_settings(
        {
            f"{prefix}DATASET_NAMES": "d",
            f"{prefix}MODEL_NAME": "m",
            f"{prefix}TRAINING_SCHEDULE": "0 2 * * 1-5",
            f"{prefix}TRAINING_SCHEDULE_ALWAYS": "true",
            f"{prefix}TRAINING_DEBOUNCE_SECONDS": "300",
            f"{prefix}TRAINING_MIN_INTERVAL_SECONDS": "3600",
            f"{prefix}TRAINING_LATEST_ONLY": "true",
            f"{prefix}INFERENCE_SCHEDULE": "every 6h",
            f"{prefix}SCHEDULE_CATCHUP": "None",
        }
    )
    (nightly,) = settings.automations
    policy = nightly.training_policy
    assert policy.schedule is not None and policy.schedule.spec == "0 2 * * 1-5"
    assert (policy.schedule_always, policy.latest_only) == (True, True)
    assert (policy.debounce_seconds, policy.min_interval_seconds) == (300, 3600)
    assert nightly.inference_schedule is not None and nightly.inference_schedule.interval
    assert nightly.schedule_catchup == "none"
    assert describe(settings)["automations"]["nightly"]["training_policy"]["latest_only"]
    # the single form: the same FIELDs; none set trains each selected version at once
    single = load_settings({"AUTOPILOT_TRAINING_DEBOUNCE_SECONDS": "10"}).automations[0]
    assert single.training_policy.gated and single.inference_schedule is None
    assert not load_settings({}).automations[0].training_policy.gated


def test_a_bad_schedule_or_policy_is_named():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_TRAINING_SCHEDULE": "every day",
                "AUTOPILOT_INFERENCE_SCHEDULE": "0 6 * * 8",
                "AUTOPILOT_TRAINING_DEBOUNCE_SECONDS": "-5",
                "AUTOPILOT_TRAINING_LATEST_ONLY": "sometimes",
                "AUTOPILOT_SCHEDULE_CATCHUP": "all",
            }
        )
    text = str(caught.value)
    for name in (
        "AUTOPILOT_TRAINING_SCHEDULE='every day'",
        "AUTOPILOT_INFERENCE_SCHEDULE='0 6 * * 8'",
        "AUTOPILOT_TRAINING_DEBOUNCE_SECONDS='-5'",
        "AUTOPILOT_TRAINING_LATEST_ONLY='sometimes'",
        "AUTOPILOT_SCHEDULE_CATCHUP='all'",
    ):
        assert name in text
    assert "five fields" in text and "0-7" in text
    with pytest.raises(ConfigError, match=r"TRAINING_SCHEDULE_ALWAYS=true.*not set"):
        load_settings({"AUTOPILOT_TRAINING_SCHEDULE_ALWAYS": "true"})


def test_a_training_told_nothing_of_its_dataset_is_warned_of_by_its_variable(tmp_path):
    """Every selected version would launch the same run: a warning naming the variable (and
    the config's placeholders, which are never filled); the bundled default gets none."""
    from service.runtime.checks import training_warnings

    (tmp_path / "train.yaml").write_text("parameters:\n  train: '{{ dataset.id }}'\n")
    settings = load_settings(
        {
            "AUTOPILOT_SOURCE_ROOT": str(tmp_path),
            f"{CHURN}DATASET_NAMES": "churn_train",
            f"{CHURN}MODEL_NAME": "churn",
            f"{CHURN}TRAINING_PIPELINE": "pipelines.training:training",
            f"{CHURN}TRAINING_CONFIG": "train.yaml",
            f"{CHURN}TRAINING_PARAMETERS": '{"alpha": 0.1, "name": "{{ model.name }}"}',
            f"{IRIS}MODEL_NAME": "iris_classifier",
            f"{IRIS}DATASET_NAMES": "iris_training_dataset",
        }
    )
    (warning,) = training_warnings(settings.automations)
    assert (warning.automation, warning.variable) == ("churn", f"{CHURN}TRAINING_PARAMETERS")
    assert warning.message.startswith(f"{CHURN}TRAINING_PARAMETERS: no {{{{ dataset.* }}}}")
    assert "churn_train" in warning.message
    assert f"{CHURN}TRAINING_CONFIG's parameters hold dataset.id" in warning.message
    assert training_warnings(load_settings({}).automations) == []


def test_the_gate_rollback_and_deployment_settings_per_automation():
    """Issue 18: PROMOTION_MODE, APPROVAL_TIMEOUT_SECONDS, ROLLBACK_ON_FAILURE and
    DEPLOYMENT_*, in both forms; defaults change nothing of before."""
    (default,) = load_settings({}).automations
    assert (default.promotion_mode.value, default.approval_timeout_seconds) == ("auto", None)
    assert (default.rollback_on_failure, default.deployment) == (False, None)
    assert set(default.pipelines) == {"training", "inference"}
    (gated,) = load_settings(
        {
            f"{CHURN}MODEL_NAME": "churn",
            f"{CHURN}DATASET_NAMES": "a",
            f"{CHURN}PROMOTION_MODE": " Approval ",
            f"{CHURN}APPROVAL_TIMEOUT_SECONDS": "86400",
            f"{CHURN}ROLLBACK_ON_FAILURE": "true",
            f"{CHURN}DEPLOYMENT_PIPELINE": "pipelines.deploy:deploy",
            f"{CHURN}DEPLOYMENT_PARAMETERS": '{"version": "{{ model_version.number }}"}',
        }
    ).automations
    assert gated.promotion_mode.value == "approval" and gated.approval_timeout_seconds == 86400
    assert gated.rollback_on_failure is True
    assert gated.deployment is not None
    assert gated.deployment.reference == "pipelines.deploy:deploy"
    assert gated.deployment.parameters == {"version": "{{ model_version.number }}"}
    assert list(gated.pipelines) == ["training", "inference", "deployment"]
    shown = describe(load_settings({"AUTOPILOT_PROMOTION_MODE": "approval"}))
    assert shown["automations"]["default"]["promotion_mode"] == "approval"  # type: ignore[index]


def test_bad_gate_and_deployment_settings_are_named():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_PROMOTION_MODE": "manual",
                "AUTOPILOT_APPROVAL_TIMEOUT_SECONDS": "-5",
                "AUTOPILOT_DEPLOYMENT_PIPELINE": "deploy",
                "AUTOPILOT_DEPLOYMENT_PARAMETERS": '{"x": "{{ dataset.nope }}"}',
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "AUTOPILOT_PROMOTION_MODE='manual': Input should be 'auto' or 'approval'" in problems
    assert "AUTOPILOT_APPROVAL_TIMEOUT_SECONDS='-5': Input should be greater than 0" in problems
    assert "AUTOPILOT_DEPLOYMENT_PIPELINE='deploy': expected module:attribute" in problems
    assert "unknown placeholder dataset.nope" in problems
    with pytest.raises(ConfigError, match="DEPLOYMENT_PIPELINE: unset, but"):
        load_settings({"AUTOPILOT_DEPLOYMENT_PARAMETERS": '{"x": 1}'})


def test_an_evaluation_pipeline_with_its_dataset_and_a_minimum_improvement(tmp_path):
    (tmp_path / "evaluation.yaml").write_text("model:\n  name: churn\n")
    settings = load_settings(
        {
            "AUTOPILOT_SOURCE_ROOT": str(tmp_path),
            f"{CHURN}DATASET_NAMES": "churn_train",
            f"{CHURN}MODEL_NAME": "churn",
            f"{CHURN}PROMOTION_MIN_IMPROVEMENT": "0.5",
            f"{CHURN}EVALUATION_PIPELINE": "pipelines.evaluation:evaluation",
            f"{CHURN}EVALUATION_CONFIG": "evaluation.yaml",
            f"{CHURN}EVALUATION_PARAMETERS": '{"data": "{{ evaluation_dataset.id }}", '
            '"model": "{{ model_version.metadata.run }}"}',
            f"{CHURN}EVALUATION_DATASET_NAME": "churn_holdout",
            f"{CHURN}EVALUATION_DATASET_REQUIRED_TAGS": "approved, frozen",
            f"{IRIS}DATASET_NAMES": "iris_training_dataset",
            f"{IRIS}MODEL_NAME": "iris_classifier",
        }
    )
    churn, iris = settings.automations
    assert churn.promotion.min_improvement == 0.5 and iris.promotion.min_improvement == 0
    assert iris.evaluation is None and set(iris.pipelines) == {"training", "inference"}
    assert churn.evaluation is not None
    assert churn.evaluation.dataset_name == "churn_holdout"
    assert churn.evaluation.required_tags == ("approved", "frozen")
    assert churn.evaluation.pipeline.config_path == str(tmp_path / "evaluation.yaml")
    assert churn.evaluation.pipeline.source_root == str(tmp_path.resolve())
    assert churn.pipelines["evaluation"] == churn.evaluation.pipeline
    shown = describe(settings)["automations"]["churn"]  # type: ignore[index]
    assert shown["evaluation"]["dataset_name"] == "churn_holdout"
    assert shown["promotion"]["min_improvement"] == 0.5
    # The single form has the same fields; the required tags default to `approved`.
    single = load_settings(
        {
            "AUTOPILOT_EVALUATION_PIPELINE": "pipelines.evaluation:evaluation",
            "AUTOPILOT_EVALUATION_DATASET_NAME": "iris_holdout",
        }
    )
    (default,) = single.automations
    assert default.evaluation is not None and default.evaluation.required_tags == ("approved",)


def test_every_evaluation_mistake_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                f"{CHURN}DATASET_NAMES": "a",
                f"{CHURN}MODEL_NAME": "churn",
                f"{CHURN}EVALUATION_PIPELINE": "pipelines.evaluation:evaluation",  # no dataset
                f"{IRIS}DATASET_NAMES": "b",
                f"{IRIS}MODEL_NAME": "iris",
                f"{IRIS}EVALUATION_DATASET_NAME": "holdout",  # no pipeline
                "AUTOPILOT_AUTOMATIONS__Y__DATASET_NAMES": "d",
                "AUTOPILOT_AUTOMATIONS__Y__MODEL_NAME": "y",
                "AUTOPILOT_AUTOMATIONS__Y__PROMOTION_MIN_IMPROVEMENT": "-1",
                "AUTOPILOT_AUTOMATIONS__X__DATASET_NAMES": "c",
                "AUTOPILOT_AUTOMATIONS__X__MODEL_NAME": "x",
                "AUTOPILOT_AUTOMATIONS__X__EVALUATION_PIPELINE": "evaluation",
                "AUTOPILOT_AUTOMATIONS__X__EVALUATION_PARAMETERS": '{"d": "{{ dataset.id }}"}',
                "AUTOPILOT_AUTOMATIONS__X__PROMOTION_MIN_IMPROVEMENT": "nan",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert f"{CHURN}EVALUATION_DATASET_NAME: required with {CHURN}EVALUATION_PIPELINE" in problems
    assert f"{IRIS}EVALUATION_DATASET_NAME: set without {IRIS}EVALUATION_PIPELINE" in problems
    assert "AUTOPILOT_AUTOMATIONS__Y__PROMOTION_MIN_IMPROVEMENT='-1'" in problems
    x = "AUTOPILOT_AUTOMATIONS__X__"
    assert f"{x}EVALUATION_PIPELINE='evaluation': expected module:attribute" in problems
    assert f"{x}EVALUATION_PARAMETERS=" in problems
    assert "unknown placeholder dataset.id (known: model.name" in problems
    assert "evaluation_dataset.id" in problems  # offered
    assert f"{x}PROMOTION_MIN_IMPROVEMENT='nan'" in problems
