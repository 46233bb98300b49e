"""A seed checked against templates (pure logic: templates are given as data)."""

from vatools.seed.check import check_against_templates
from vatools.seed.file import parse_seed
from vatools.seed.templates import Template, parse_templates, password_pairs

TEMPLATES = parse_templates(
    """Template: wiki/title
Type: string
Default: Wiki
Description: Title

Template: wiki/license
Type: select
Choices-C: cc-by, gnufdl
Choices: CC BY, GNU FDL
Description: License

Template: wiki/servers
Type: multiselect
Choices: apache2, lighttpd
Description: Web servers

Template: wiki/password
Type: password
Description: Password

Template: wiki/confirm
Type: password
Description: Again
""",
    "wiki",
)


def check(text: str, complete: bool = True) -> list[str]:
    seed = parse_seed(text, "s")
    return [str(p) for p in check_against_templates(seed, TEMPLATES, {"wiki"}, complete)]


def test_a_correct_seed_has_no_problems():
    assert check(
        "wiki wiki/title string T\nwiki wiki/license select gnufdl\n"
        "wiki wiki/servers multiselect apache2, lighttpd\n"
        "wiki wiki/password password\nwiki wiki/confirm password\nwiki wiki/title seen false\n"
    ) == []


def test_select_values_are_the_untranslated_choices():
    assert check("wiki wiki/license select GNU FDL\n") == [
        "s:1: error: wiki/license: 'GNU FDL' is not one of its choices"
    ]


def test_multiselect_items_outside_the_choices():
    assert check("wiki wiki/servers multiselect apache2, nginx\n") == [
        "s:1: error: wiki/servers: 'nginx' is not one of its choices"
    ]


def test_type_mismatch():
    assert check("wiki wiki/license string gnufdl\n") == [
        "s:1: error: wiki/license is a select question (wiki), the seed says string"
    ]


def test_typo_in_a_question_is_an_error_with_a_suggestion():
    assert check("wiki wiki/titel string T\n") == [
        "s:1: error: unknown question wiki/titel: did you mean wiki/title?"
    ]


def test_question_the_package_does_not_ask_here_is_a_warning_to_skip():
    (problem,) = check_against_templates(
        parse_seed("wiki wiki/restart-webserver boolean true\n", "s"), TEMPLATES, {"wiki"}
    )
    assert problem.severity == "warning" and problem.code == "not-asked"


def test_question_of_a_package_not_installed_is_an_error_only_when_templates_are_complete():
    assert check("other other/q string x\n") == [
        "s:1: error: no package being installed asks other/q (its owner 'other' is not among them)"
    ]
    assert check("other other/q string x\n", complete=False) == []


def test_password_without_its_confirmation_and_different_values():
    assert check("wiki wiki/password password secret\n") == [
        "s:1: error: wiki/password is answered but wiki/confirm is not;"
        " the package's config script would ask again and again"
    ]
    problems = check("wiki wiki/password password one\nwiki wiki/confirm password two\n")
    assert problems == [
        "s:2: error: wiki/confirm differs from wiki/password;"
        " the package's config script would ask again and again"
    ]
    assert "one" not in problems[0] and "two" not in problems[0]  # never print passwords


def test_password_pairs_by_name():
    names = ["mysql/root_password", "mysql/root_password_again", "slapd/password1", "slapd/password2"]
    templates = {n: Template(n, "password", n.split("/")[0]) for n in names}
    assert password_pairs(templates) == {
        "mysql/root_password_again": "mysql/root_password",
        "slapd/password2": "slapd/password1",
    }


def test_computed_choices_are_not_checked():
    t = parse_templates("Template: a/b\nType: select\nChoices: ${list}\nDescription: x\n", "a")
    assert t["a/b"].choices is None
