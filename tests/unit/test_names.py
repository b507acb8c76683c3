"""Watched names against the store's names: MySQL matches names ignoring case (ZenML sets no
collation), SQLite exactly (core/names)."""

from service.core.names import NameMap, folded, unknown_names


def test_a_store_name_that_differs_only_in_case_answers_to_the_configured_name():
    names = NameMap(["Iris_Training_Dataset", "other"], store_folds=True)
    assert names.resolve("iris_training_dataset") == "Iris_Training_Dataset"
    assert names.resolve("iris_training_dataset", ["Iris_Training_Dataset", "other"]) == (
        "Iris_Training_Dataset"
    )
    assert names.resolve("other", ["other", "Iris_Training_Dataset"]) == "other"


def test_an_exact_name_wins_and_an_unwatched_one_is_returned_as_it_is():
    names = NameMap(["iris", "IRIS"], store_folds=True)
    assert names.resolve("iris") == "iris" and names.resolve("IRIS") == "IRIS"
    assert names.resolve("Iris") == "IRIS"  # two spellings of one name: always the same one
    assert names.resolve("unrelated") == "unrelated"
    assert names.resolve("unrelated", ["iris", "IRIS"]) == "unrelated"


def test_on_a_store_that_compares_exactly_a_name_differing_in_case_is_another_artifact():
    names = NameMap(["iris_training_dataset"], store_folds=False)
    assert names.resolve("IRIS_training_dataset") == "IRIS_training_dataset"  # not watched
    assert names.resolve("IRIS_training_dataset", ["iris_training_dataset", "x"]) == (
        "IRIS_training_dataset"
    )


def test_a_query_for_one_name_answers_for_that_name_whatever_the_database_matched():
    names = NameMap(["café"], store_folds=True)
    assert names.resolve("CAFE", ["café"]) == "café"  # accents ignored too (MySQL's *_ci)
    assert folded("Café ") == folded("cafe")


def test_unknown_names_name_the_stores_spelling_or_close_matches_or_nothing():
    watched = {
        "Iris_Training_Dataset": ["AUTOPILOT_DATASET_NAMES"],
        "iris_trainig_dataset": ["AUTOPILOT_AUTOMATIONS__B__DATASET_NAMES"],
        "churn": ["AUTOPILOT_AUTOMATIONS__C__DATASET_NAMES"],
        "iris_training_dataset": ["AUTOPILOT_AUTOMATIONS__D__DATASET_NAMES"],
    }
    found = {u.name: u for u in unknown_names("artifact", watched, ["iris_training_dataset"])}
    assert set(found) == {"Iris_Training_Dataset", "iris_trainig_dataset", "churn"}
    case = found["Iris_Training_Dataset"]
    assert case.store_spelling == "iris_training_dataset" and case.likely_typo
    assert "spelt 'iris_training_dataset'" in case.message
    typo = found["iris_trainig_dataset"]
    assert typo.close == ("iris_training_dataset",) and typo.likely_typo
    assert "AUTOPILOT_AUTOMATIONS__B__DATASET_NAMES" in typo.message
    assert "did you mean 'iris_training_dataset'" in typo.message
    new = found["churn"]
    assert (new.store_spelling, new.close, new.likely_typo) == (None, (), False)
    assert "(yet)" in new.message


def test_an_evaluation_datasets_name_is_checked_like_a_watched_one():
    from service.core.names import check_watched
    from service.settings import load_settings

    settings = load_settings(
        {
            "AUTOPILOT_EVALUATION_PIPELINE": "pipelines.evaluation:evaluation",
            "AUTOPILOT_EVALUATION_DATASET_NAME": "iris_holdot",
        }
    )
    found = check_watched(settings.automations, ["iris_training_dataset", "iris_holdout"], [])
    (typo,) = [u for u in found if u.kind == "artifact"]
    assert typo.variables == ("AUTOPILOT_EVALUATION_DATASET_NAME",)
    assert typo.close == ("iris_holdout",)
