from service.errors import describe_error


def test_the_innermost_cause_is_named_with_its_wrapper():
    try:
        try:
            raise ValueError("dataset has no label column 'target'")
        except ValueError as inner:
            raise RuntimeError("Pipeline run has failed") from inner
    except RuntimeError as outer:
        text = describe_error(outer)
    assert text == "ValueError: dataset has no label column 'target' (raised as RuntimeError)"


def test_a_plain_error_is_described_as_is_and_bounded():
    assert describe_error(KeyError("x")) == "KeyError: 'x'"
    assert len(describe_error(ValueError("y" * 5000))) == 2000
