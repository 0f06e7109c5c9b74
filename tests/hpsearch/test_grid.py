"""siamkpn.hpsearch.grid: ranges as numpy.arange, result names, the level-1 grid and the level-2 refinement."""
from __future__ import annotations

import pytest

from siamkpn.hpsearch.grid import (
    BOUNDS,
    Point,
    SearchSpace,
    format_value,
    int_range_count,
    parse_int_range,
    parse_range,
    range_count,
    refine_count,
)


def test_parse_range_is_arange_rounded_with_exclusive_stop():
    assert parse_range("0.0,0.5,0.1") == [0.0, 0.1, 0.2, 0.3, 0.4]
    # numpy.arange(0.3, 0.8, 0.1) has 6 elements (float noise reaches 0.8); the stop stays exclusive
    assert parse_range("0.3,0.8,0.1") == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert parse_range("0.35,0.5,0.05") == [0.35, 0.4, 0.45]
    assert parse_range(" 0.44 ") == [0.44]


@pytest.mark.parametrize("text, reason", [("0.1,0.2", "start,stop,step"), ("a,1,0.1", "not numbers"),
                                          ("0.5,0.1,0.1", "empty"), ("0,1,0", "positive"), ("0,inf,1", "finite")])
def test_parse_range_errors_name_the_flag(text, reason):
    with pytest.raises(ValueError, match=reason) as err:
        parse_range(text, "--lr")
    assert "--lr" in str(err.value)


def test_parse_int_range():
    assert parse_int_range("255,288,8") == [255, 263, 271, 279, 287]
    assert parse_int_range("255") == [255]
    with pytest.raises(ValueError, match="--search-region: expected integers"):
        parse_int_range("255.5,260,1", "--search-region")


def test_point_names_are_unique_and_readable():
    p = Point(12, 0.1, 0.54, 0.59)
    assert p.name == "checkpoint_e12_pk-0.100_wi-0.540_lr-0.590"
    assert Point(3, 0.0125, 0.5, 1.0, 255).name == "checkpoint_e3_pk-0.0125_wi-0.500_lr-1.000_sr-255"
    assert format_value(0.30000000000000004) == "0.300" and format_value(2) == "2.000"
    assert Point.from_params(p.params()) == p
    q = Point(3, 0.1, 0.2, 0.3, 287)
    assert Point.from_params(q.params()) == q and q.group == (3, 287)
    assert q.replace(lr=0.35) == Point(3, 0.1, 0.2, 0.35, 287)
    with pytest.raises(ValueError, match="not a search point"):
        Point.from_params({"epoch": 1, "penalty_k": 0.1})


def test_level1_is_the_full_product_epoch_major():
    space = SearchSpace([2, 1], [0.1, 0.2], [0.3, 0.4, 0.5], [0.6], [255, 263])
    grid = space.level1()
    assert len(grid) == 2 * 2 * 3 * 1 * 2 and len({p.name for p in grid}) == len(grid)
    assert [p.epoch for p in grid] == [1] * 12 + [2] * 12
    # one snapshot and region are contiguous, so a batch of them needs one model and one crop size
    assert [p.group for p in grid[:6]] == [(1, 255)] * 6
    assert space.steps() == {"penalty_k": 0.1, "window_influence": 0.1, "lr": None}


def test_refine_half_step_around_centres_within_bounds():
    space = SearchSpace([1, 2], [0.0, 0.1, 0.2], [0.6, 0.8, 1.0], [0.4])
    centre = Point(2, 0.1, 0.8, 0.4)
    fine = space.refine([centre])
    # pk and wi move by +-half their step; lr was searched with one value, so it stays fixed
    assert {(p.penalty_k, p.window_influence) for p in fine} == {
        (pk, wi) for pk in (0.05, 0.1, 0.15) for wi in (0.7, 0.8, 0.9)} - {(0.1, 0.8)}
    assert all(p.epoch == 2 and p.lr == 0.4 for p in fine)
    edge = space.refine([Point(1, 0.0, 1.0, 0.4)])  # pk < 0 and wi > 1 are dropped
    assert {(p.penalty_k, p.window_influence) for p in edge} == {(0.0, 0.9), (0.05, 0.9), (0.05, 1.0)}
    # overlapping neighbourhoods (pk 0.15 x three wi values) give each point once
    both = space.refine([centre, Point(2, 0.2, 0.8, 0.4)])
    assert len({p.name for p in both}) == len(both) == 8 + 8 - 3
    with pytest.raises(ValueError, match="factor"):
        space.refine([centre], factor=1.0)


def test_refine_a_quarter_step_keeps_names_distinct():
    space = SearchSpace([1], [0.0, 0.05], [0.4], [0.3, 0.35])
    fine = space.refine([Point(1, 0.05, 0.4, 0.35)], factor=0.25)
    assert sorted(p.name for p in fine)[0] == "checkpoint_e1_pk-0.0375_wi-0.400_lr-0.3375"
    assert len(fine) == 8


def test_empty_axis_is_an_error():
    with pytest.raises(ValueError, match="no values for lr"):
        SearchSpace([1], [0.1], [0.2], [])


@pytest.mark.parametrize("param, text, bad", [
    ("penalty_k", "-0.1,0.2,0.1", "-0.1"), ("window_influence", "0.9,1.3,0.2", "1.1"), ("lr", "-0.5", "-0.5"),
    ("lr", "1.0001", "1.0001")])
def test_parse_range_bounds_name_the_flag_and_the_values(param, text, bad):
    with pytest.raises(ValueError, match=rf"--{param}: values must be .*; '{text}' gives {bad}$"):
        parse_range(text, f"--{param}", BOUNDS[param])
    assert parse_range("0.0,1.01,0.5", "--lr", BOUNDS["lr"]) == [0.0, 0.5, 1.0]  # the bounds themselves are in
    assert parse_range("3.5", "--penalty-k", BOUNDS["penalty_k"]) == [3.5]  # penalty_k has no upper bound


@pytest.mark.parametrize("text", [
    "0.0,0.5,0.1", "0.3,0.8,0.1", "0.35,0.5,0.05", " 0.44 ", "0.1,0.8,0.05", "-0.3,0.3,0.1", "0,1,0.3",
    "0.0000005,0.00001,0.000001",  # half-unit start: rounding moves every value, none merges
    "0.1,0.10001,0.0000003", "0.1,0.1001,1e-9", "0.5,0.5000024,1e-7",  # steps under 1e-6: rounding merges values
    "0.999999,1.0000005,0.0000001",  # the last values round onto the exclusive stop
])
def test_range_count_is_the_number_of_values_without_making_them(text):
    assert range_count(text) == len(parse_range(text))


@pytest.mark.parametrize("text", ["0.1,0.2", "a,1,0.1", "0.5,0.1,0.1", "0,1,0", "0,inf,1", "0.3,0.3,0.1"])
def test_range_count_raises_what_parse_range_raises(text):
    with pytest.raises(ValueError) as counted:
        range_count(text, "--lr")
    with pytest.raises(ValueError) as parsed:
        parse_range(text, "--lr")
    assert str(counted.value) == str(parsed.value)


def test_huge_ranges_are_counted_not_made():
    assert range_count("0,1,0.000001") == 10 ** 6 and range_count("0,1,1e-12") == 10 ** 6  # 1e12 arange values
    assert range_count("0,1e9,0.001") == 10 ** 12
    assert int_range_count("0,1000000000000,1") == 10 ** 12
    assert int_range_count("255,288,8") == len(parse_int_range("255,288,8")) == 5
    with pytest.raises(ValueError, match="--search-region: the range '9,1,1' is empty"):
        int_range_count("9,1,1", "--search-region")
    assert refine_count(3, 2) == 24 and refine_count(5, 0) == 0


def test_level1_is_enumerated_one_point_at_a_time():
    axis = [round(i * 1e-4, 6) for i in range(2000)]
    space = SearchSpace(list(range(1, 11)), axis, axis, axis[:10])  # 400 million points: never listed
    assert space.size() == 10 * 2000 * 2000 * 10
    points = space.iter_level1()
    assert iter(points) is points  # an iterator, not a list
    assert next(points) == Point(1, 0.0, 0.0, 0.0) and next(points) == Point(1, 0.0, 0.0, 0.0001)
    small = SearchSpace([2, 1], [0.1, 0.2], [0.3], [0.6], [255, 263])
    assert list(small.iter_level1()) == small.level1() and small.size() == len(small.level1()) == 8
