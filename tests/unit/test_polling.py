from service.core.polling import PollGroup, Seen, plan_polls


def test_equal_cursors_are_one_query_and_read_nothing_twice():
    cursors = {f"dataset_{i}": 3 for i in range(50)}
    (group,) = plan_polls(cursors)
    assert group.above == 3 and len(group.names) == 50


def test_a_group_reads_at_most_the_allowed_old_versions_again():
    cursors = {"a": 0, "b": 5, "c": 10, "d": 500, "e": 503}
    assert plan_polls(cursors, max_waste=15) == [
        PollGroup(("a", "b", "c"), 0),  # reads b's 5 and c's 10 old versions again: 15
        PollGroup(("d", "e"), 500),
    ]
    assert plan_polls(cursors, max_waste=0) == [
        PollGroup((name,), cursor) for name, cursor in sorted(cursors.items())
    ]


def test_every_name_is_polled_from_at_or_below_its_cursor():
    cursors = {f"n{i}": (i * 7) % 40 for i in range(30)}
    groups = plan_polls(cursors, max_waste=12)
    assert sorted(n for g in groups for n in g.names) == sorted(cursors)
    for group in groups:
        assert all(group.above <= cursors[name] for name in group.names)
        assert sum(cursors[name] - group.above for name in group.names) <= 12


def test_judged_versions_are_left_out_until_the_floor_passes_them():
    seen = Seen()
    seen.add("a", "id-4", 4)
    seen.add("a", "id-9", 9)
    seen.add("b", "id-2", 2)
    assert seen.ids_above(PollGroup(("a", "b"), 1)) == ["id-4", "id-9", "id-2"]
    assert seen.ids_above(PollGroup(("a",), 5)) == ["id-9"]  # id-4 is below the floor now
    assert seen.ids_above(PollGroup(("a", "b"), 1)) == ["id-9", "id-2"]  # and forgotten
