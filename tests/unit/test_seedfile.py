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


def test_split_choices_splits_as_debconf_value_split():
    # Only a comma followed by blanks separates; nothing is stripped; "\ " is a plain space.
    assert split_choices("a,b, c") == ["a,b", "c"]
    assert split_choices(" a,  b ") == [" a", "b "]
    assert split_choices("a\\ , b, ") == ["a ", "b"]
    assert split_choices(", a") == ["", "a"]


def test_only_ascii_blanks_separate_words_as_in_debconf():
    # Perl's \s on bytes: space, tab, vertical tab, form feed, carriage return.
    (sel,) = parse_seed("pkg\x0bpkg/q\x0cstring\rMy\u00a0Wiki\u3000\n", "s").selections
    assert (sel.owner, sel.question, sel.type, sel.value) == (
        "pkg", "pkg/q", "string", "My\u00a0Wiki\u3000"
    )


def test_a_unicode_blank_between_words_is_an_error_naming_it():
    seed = parse_seed("pkg pkg/q string ok\npkg\u00a0pkg/q string x\n", "my.seed")
    (sel,) = seed.selections[1:]
    assert (sel.owner, sel.question, sel.type) == ("pkg\u00a0pkg/q", "string", "x")
    (problem,) = check_syntax(seed)
    assert str(problem) == (
        "my.seed:2: error: U+00A0 (NO-BREAK SPACE) is not a blank to debconf-set-selections:"
        " it reads owner 'pkg\\xa0pkg/q', question 'string', type 'x' and skips the line"
    )
    assert problem.hint == "replace it with a space or a tab"


def test_a_comment_or_blank_line_led_by_a_unicode_blank_is_an_error():
    seed = parse_seed("\u2003# set the title here\n\u3000\n\x1c\n", "s")
    problems = check_syntax(seed)
    assert [p.location.line for p in problems if p.location] == [1, 2, 3]
    assert "reads this comment as a seed line" in problems[0].message
    assert "U+3000 (IDEOGRAPHIC SPACE) is not a blank" in problems[1].message
    assert problems[2].message.startswith("cannot parse '\\x1c'")


def test_a_comment_ending_in_a_backslash_swallows_the_next_line():
    seed = parse_seed("# old answer: \\\npkg pkg/q string x\npkg pkg/r string y\n", "s")
    assert [s.question for s in seed.selections] == ["pkg/r"]
    (problem,) = check_syntax(seed)
    assert str(problem).startswith("s:2: error: this line continues the comment on line 1")
    assert problem.hint == "remove the backslash at the end of line 1"


def test_carriage_returns_one_dropped_per_line_before_continuing():
    seed = parse_seed("pkg pkg/q string a\\\r\nb\r\npkg pkg/r string c\r\r\n", "s")
    assert [s.value for s in seed.selections] == ["ab", "c\r"]
    (problem,) = check_syntax(seed)
    assert str(problem) == (
        "s:3: error: pkg/r: the value ends in a carriage return, which"
        " debconf-set-selections drops at the end of a line"
    )


def test_values_debconf_would_hand_back_differently_are_errors():
    seed = parse_seed("a a/p password C:\\new\na a/q string last\\", "s")
    assert [s.value for s in seed.selections] == ["C:\\new", "last\\"]
    messages = [str(p) for p in check_syntax(seed)]
    assert messages == [
        "s:1: error: a/p: a backslash followed by n in a value is read back by debconf as a line"
        " break",
        "s:2: error: a/q: the value ends in a backslash, which debconf-set-selections reads as"
        " 'continued on the next line'",
    ]


def test_the_word_0_as_owner_or_question_is_an_error():
    seed = parse_seed("0 a/q string x\na 0 string x\n", "s")
    assert [p.location.line for p in check_syntax(seed) if p.location] == [1, 2]
