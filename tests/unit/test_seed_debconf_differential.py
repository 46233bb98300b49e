"""vatools reads a seed line as the real debconf-set-selections reads it, or calls it an error.

Generated seed texts (every kind of blank, control characters, CR, tabs, continuations,
comments, the seen flag, known and unknown types) go through vatools.seed.file and through
/usr/bin/debconf-set-selections on a scratch database in a temporary directory (DEBCONF_SYSTEMRC
points at a debconf.conf written there; the host's /var/cache/debconf is checked to stay
untouched).  What debconf stored is read back with debconf's own Perl modules and compared
with what vatools parsed:

- a seed vatools finds no error in is stored exactly as parsed, with no warning from debconf;
- the questions without an error are stored as parsed also from Seed.render() (what vainstall
  feeds debconf);
- a stored value splits into the items Debconf::Question's value_split makes of it.
- the lines debconf skips ("Unknown type", "parse error") are the lines vatools reports;
- wherever debconf stored something else than vatools parsed, vatools reported an error on a
  line of that question.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vatools.seed.file import FLAGS, VALUE_TYPES, Seed, check_syntax, parse_seed, split_choices
from tests.support.debconf import HOST_DATABASE_DIR, write_debconf_conf




# Every question as a package would read it back, through debconf's own modules, read-only:
# name, value, template type, seen flag, then the owners; each field hex ("-": undefined).
# Before the owners: the value as Debconf::Question->value_split splits a multiselect value,
# as COUNT:HEX,HEX,...
DUMP = r"""
use strict;
use warnings;
use Debconf::Db;
use Debconf::Question;
Debconf::Db->load(readonly => "true");
my $it = Debconf::Question->iterator;
while (my $q = $it->iterate) {
    my $name = $q->name;
    my @items = $q->value_split;
    my @fields = map { defined $_ ? unpack("H*", $_) : "-" }
        $name,
        $Debconf::Db::config->getfield($name, "value"),
        $Debconf::Db::templates->getfield($q->template->template, "type"),
        $Debconf::Db::config->getflag($name, "seen");
    push @fields, scalar(@items) . ":" . join(",", map { unpack("H*", $_) } @items);
    push @fields, map { unpack("H*", $_) } $Debconf::Db::config->owners($name);
    print join(" ", @fields), "\n";
}
"""

# Environment that could point debconf or Perl elsewhere (or make Perl decode UTF-8).
_FOREIGN_ENV = re.compile(r"DEBCONF_.*|DPKG_ROOT|PERL_UNICODE|PERL5OPT|PERL5LIB|PERLLIB")


@dataclass(frozen=True)
class Stored:
    value: str | None
    owners: frozenset[str]
    type: str | None
    seen: bool
    # The value split as debconf splits a multiselect value; not compared, see the test.
    items: tuple[str, ...] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str
    questions: dict[str, Stored]

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.stderr))


class ScratchDebconf:
    """debconf-set-selections on a fresh database in a directory of its own for every run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, text: str, unseen: bool) -> Outcome:
        directory = Path(tempfile.mkdtemp(dir=self.root))
        conf = directory / "debconf.conf"
        write_debconf_conf(conf, directory)
        env = {k: v for k, v in os.environ.items() if not _FOREIGN_ENV.fullmatch(k)}
        env.update(DEBCONF_SYSTEMRC=str(conf), LC_ALL="C", LANGUAGE="C")
        command = ["debconf-set-selections"] + (["-u"] if unseen else [])
        loaded = subprocess.run(
            command, input=text.encode("utf-8"), env=env, capture_output=True, check=False
        )
        dumped = subprocess.run(
            ["perl", "-e", DUMP], env=env, capture_output=True, check=True
        )
        assert (directory / "config.dat").exists()  # debconf wrote here, nowhere else
        return Outcome(
            loaded.returncode,
            loaded.stderr.decode("utf-8", "replace"),
            dict(_stored(line) for line in dumped.stdout.decode("ascii").splitlines()),
        )


def _stored(line: str) -> tuple[str, Stored]:
    words = line.split(" ")
    name, value, type_, seen = (_unhex(word) for word in words[:4])
    count, _, hexes = words[4].partition(":")
    items = tuple(_unhex(h) or "" for h in hexes.split(",")) if int(count) else ()
    owners = frozenset(_unhex(word) or "" for word in words[5:] if word)
    assert name is not None
    return name, Stored(value, owners, type_, seen == "true", items)


def _unhex(word: str) -> str | None:
    return None if word == "-" else bytes.fromhex(word).decode("utf-8", "surrogateescape")


def expected(seed: Seed, unseen: bool) -> tuple[dict[str, Stored], int]:
    """What debconf-set-selections does with vatools's reading of the seed, in order.

    Returns the questions stored and how many flag lines name a question not (yet) there.
    """
    questions: dict[str, Stored] = {}
    missing = 0
    for sel in seed.selections:
        if sel.type in FLAGS:
            old = questions.get(sel.question)
            if old is None:
                missing += 1
            else:
                questions[sel.question] = Stored(
                    old.value, old.owners, old.type, sel.value == "true"
                )
        elif sel.type in VALUE_TYPES:
            old = questions.get(sel.question)
            owners = (old.owners if old else frozenset()) | {sel.owner}
            seen = True if not unseen else (old.seen if old else False)
            questions[sel.question] = Stored(sel.value, owners, sel.type, seen)
    return questions, missing


def _host_state() -> dict[str, tuple[int, int, str]]:
    state = {}
    for path in sorted(HOST_DATABASE_DIR.glob("*.dat*")):
        info = path.stat()
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except PermissionError:
            digest = "unreadable"
        state[path.name] = (info.st_mtime_ns, info.st_size, digest)
    return state


@pytest.fixture(scope="module")
def debconf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDebconf]:
    before = _host_state()
    yield ScratchDebconf(tmp_path_factory.mktemp("debconf"))
    assert _host_state() == before, "the host's debconf database changed"


# ASCII blanks are blanks to debconf (Perl's \s on bytes); the Unicode ones are word characters.
ASCII_BLANKS = [" ", "\t", "\x0b", "\x0c", "\r"]
UNICODE_BLANKS = [
    "\u00a0", "\u2003", "\u3000", "\x85", "\x1c", "\x1f", "\u2028", "\u202f", "\u1680"
]
WORD_CHARS = list("aq0/-_.:,#\\") + ["é", "日", "\x00", "\x01", "\x1b", "\x7f"]
TYPES = sorted(VALUE_TYPES + FLAGS) + ["error", "bool", "String", "seen\u00a0"]


def _chars(alphabet: list[str], min_size: int = 0, max_size: int = 6) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(alphabet), min_size=min_size, max_size=max_size)


# Mostly what a person writes, often enough something debconf reads otherwise.
blanks = st.one_of(
    st.sampled_from([" ", "\t", "  "]),
    _chars(ASCII_BLANKS, 1, 3),
    _chars(ASCII_BLANKS + UNICODE_BLANKS, 1, 3),
)
words = st.one_of(
    st.sampled_from(["pkg", "pkg/q", "pkg/r", "other"]),
    _chars(WORD_CHARS, 1),
    _chars(WORD_CHARS, 1),
    _chars(WORD_CHARS + UNICODE_BLANKS, 1),
)
values = st.one_of(
    st.sampled_from(["", "true", "false", "x", "a, b"]),
    _chars(list("ab n\\,#") + ASCII_BLANKS + ["é", "\x00", "\x1b"], 0, 8),
    _chars(list("ab n\\,#") + ASCII_BLANKS + UNICODE_BLANKS + ["é", "\x00"], 0, 8),
)
# How a physical line may end: continued, with a CR (as from Windows), or both.
endings = st.sampled_from(["", "", "", "\\", "\r", "\r\r", "\\\r", " \\"])


@st.composite
def seed_lines(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(["", "", "", " ", "\t", "\u00a0"]))
    line += draw(words) + draw(blanks) + draw(words) + draw(blanks) + draw(st.sampled_from(TYPES))
    if draw(st.booleans()):
        line += draw(st.sampled_from([" ", " ", " ", "\t", "\x0b", "\u00a0"])) + draw(values)
    return line + draw(endings)


other_lines = st.one_of(
    st.builds(lambda lead, text, end: lead + "#" + text + end,
              _chars(ASCII_BLANKS + UNICODE_BLANKS, 0, 2), values, endings),
    st.builds(lambda text, end: text + end, _chars(ASCII_BLANKS + UNICODE_BLANKS, 0, 3), endings),
    _chars(WORD_CHARS + ASCII_BLANKS + UNICODE_BLANKS + ["\\"], 0, 12),
)
seed_texts = st.builds(
    lambda lines, newline: "\n".join(lines) + newline,
    st.lists(
        st.one_of(seed_lines(), seed_lines(), seed_lines(), other_lines), min_size=1, max_size=10
    ),
    st.sampled_from(["\n", "\n", ""]),
)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=seed_texts, unseen=st.booleans())
@example(text="pkg pkg/q string My\u00a0Wiki \npkg\u00a0pkg/r string x\n", unseen=False)
@example(text="pkg pkg/q\u3000string x\n\u00a0# comment here\n\x1c\n", unseen=False)
@example(text="pkg pkg/q string a\\\n b\r\n# off \\\npkg pkg/r string x\r\r\n", unseen=True)
@example(text="pkg pkg/q password C:\\new\npkg pkg/r string end\\", unseen=False)
@example(text="pkg pkg/q seen true\npkg pkg/q boolean true\npkg pkg/q seen false\n", unseen=True)
@example(text="0 pkg/q string x\npkg pkg/r error x\npkg 0 string x\npkg pkg/s note\n", unseen=False)
def test_vatools_reads_every_seed_line_as_debconf_does(
    debconf: ScratchDebconf, text: str, unseen: bool
) -> None:
    seed = parse_seed(text, "g.seed")
    errors = [p for p in check_syntax(seed) if p.is_error]
    error_lines = {p.location.line for p in errors if p.location}
    model, missing = expected(seed, unseen)
    got = debconf.load(text, unseen)

    if got.count(r"no template name specified"):
        # Perl took a question named "0" for none and stopped before saving anything.
        assert any(s.question == "0" for s in seed.selections if s.location.line in error_lines)
        return
    assert got.returncode in (0, 1), got.stderr
    # The lines debconf skips are the lines vatools cannot read or does not know the type of.
    unknown = [s for s in seed.selections if s.type not in VALUE_TYPES + FLAGS]
    unparsable = [p for p in seed.syntax_problems if p.message.startswith("cannot parse")]
    assert got.count(r"warning: Unknown type ") == len(unknown), got.stderr
    assert got.count(r"error: parse error on line ") == len(unparsable), got.stderr
    assert got.count(r"error: Cannot find a question for ") == missing, got.stderr

    # Wherever debconf stored something else than vatools read, vatools reported an error.
    for question in model.keys() | got.questions.keys():
        if model.get(question) != got.questions.get(question):
            lines = {s.location.line for s in seed.selections if s.question == question}
            assert lines & error_lines, (question, model.get(question), got.questions.get(question))

    # vainstall feeds debconf Seed.render(), not the file: for the questions without an error,
    # debconf must read the rendered lines as vatools read the file.
    faulty = {s.question for s in seed.selections if s.location.line in error_lines}
    clean = seed.without(faulty)
    if clean.selections:
        clean_model, clean_missing = expected(clean, unseen)
        rendered = debconf.load(clean.render(), unseen)
        assert rendered.questions == clean_model
        assert rendered.count("warning|error") == clean_missing, rendered.stderr
    # A multiselect value is split into items as debconf splits it.
    for question, stored in got.questions.items():
        if stored == model.get(question) and stored.value is not None:
            assert tuple(split_choices(stored.value)) == stored.items, stored

    if not errors:
        assert got.questions == model
        assert got.count("warning|error") == missing, got.stderr
