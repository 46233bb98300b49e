"""Seed files are parsed exactly as debconf-set-selections parses them."""

from pathlib import Path

import pytest

from vatools.errors import VatoolsError
from vatools.seed.file import check_syntax, load_seed, parse_seed, split_choices


def test_comments_blank_lines_and_values_with_spaces():
    seed = parse_seed("# c\n\n  # indented comment\npkg pkg/q string two  words \n", "s")
    (sel,) = seed.selections
    assert (sel.owner, sel.question, sel.type, sel.value) == ("pkg", "pkg/q", "string", "two  words ")
    assert sel.location.line == 4


def test_tabs_separate_words_and_value_starts_after_one_blank():
    (sel,) = parse_seed("pkg\tpkg/q\tstring\t x\n", "s").selections
    assert sel.value == " x"


def test_backslash_continues_the_line_without_inserting_anything():
    seed = parse_seed("pkg pkg/q string a\\\nb\nnext next/q string c\n", "s")
    assert [s.value for s in seed.selections] == ["ab", "c"]
    assert [s.location.line for s in seed.selections] == [1, 3]


def test_missing_value_is_empty():
    (sel,) = parse_seed("pkg pkg/q password\n", "s").selections
    assert sel.value == ""


def test_too_few_words_is_a_parse_error_with_file_and_line():
    seed = parse_seed("pkg pkg/q string ok\npkg pkg/q\n", "my.seed")
    (problem,) = check_syntax(seed)
    assert str(problem).startswith("my.seed:2: error: cannot parse 'pkg pkg/q'")


def test_unknown_type_and_bad_booleans_are_errors():
    seed = parse_seed(
        "a a/x strng v\na a/y boolean yes\na a/z boolean true\na a/z seen maybe\n", "s"
    )
    messages = [str(p) for p in check_syntax(seed)]
    assert messages == [
        "s:1: error: unknown type 'strng' for a/x (debconf-set-selections would skip the line)",
        "s:2: error: a/y: boolean value must be true or false, not 'yes'",
        "s:4: error: a/z: seen value must be true or false, not 'maybe'",
    ]


def test_a_second_answer_wins_and_is_warned_about():
    seed = parse_seed("a a/q string one\na a/q string two\n", "s")
    assert seed.answer("a/q").value == "two"
    (problem,) = check_syntax(seed)
    assert problem.severity == "warning" and "first at line 1" in problem.message


def test_flag_lines_are_not_answers():
    seed = parse_seed("a a/q string v\na a/q seen false\n", "s")
    assert list(seed.answers()) == ["a/q"]
    assert [s.is_flag for s in seed.selections] == [False, True]


def test_render_round_trips_through_the_parser():
    text = "a a/q string  spaced\na a/q seen false\nb b/p password\n"
    seed = parse_seed(text, "s")
    again = parse_seed(seed.render(), "s")
    assert [(s.question, s.type, s.value) for s in again.selections] == [
        (s.question, s.type, s.value) for s in seed.selections
    ]


def test_load_refuses_unreadable_and_non_utf8_files(tmp_path: Path):
    with pytest.raises(VatoolsError, match="cannot read seed file .*missing.seed"):
        load_seed(tmp_path / "missing.seed")
    bad = tmp_path / "bad.seed"
    bad.write_bytes(b"a a/q string ok\na a/q string \xff\n")
    with pytest.raises(VatoolsError, match=r"bad.seed:2: seed file is not valid UTF-8"):
        load_seed(bad)


def test_split_choices_honours_escaped_commas():
    assert split_choices("apache2, lighttpd") == ["apache2", "lighttpd"]
    assert split_choices("a\\, b, c") == ["a, b", "c"]
