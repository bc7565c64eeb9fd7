"""One line, safe for a terminal, whatever the input held (simulator/errors.py)."""

from salesim.simulator.errors import MAX_MESSAGE, InputError, printable


def test_control_characters_are_shown_escaped_not_sent_to_the_terminal():
    err = InputError("unknown owner 'rep\x1b[2J'", file="a\x07.csv", row=3, column="own\ner")
    text = str(err)
    assert "\x1b" not in text and "\x07" not in text and "\n" not in text
    assert "rep\\x1b[2J" in text and "column 'own\\ner'" in text


def test_a_huge_cell_is_not_echoed_whole():
    value = "9" * 100_000
    text = str(InputError(f"cannot read amount '{value}'", file="o.csv", row=2, column="amount"))
    assert len(text) < MAX_MESSAGE + 100
    assert "characters]" in text and text.endswith("'")


def test_short_text_is_unchanged():
    assert printable("Jane Doe — €12,500") == "Jane Doe — €12,500"
    assert str(InputError("bad", column="--weeks")) == "option --weeks: bad"


def test_names_from_the_data_reach_the_terminal_escaped(tmp_path):
    from click.testing import CliRunner

    from salesim.cli import main

    folder = tmp_path / "hist"
    assert (
        CliRunner()
        .invoke(main, ["demo-data", str(folder), "--reps", "3", "--quarters", "4", "--quiet"])
        .exit_code
        == 0
    )
    path = folder / "opportunities.csv"
    path.write_text(path.read_text().replace("rep0001", "rep\x1b[2J\x07"))
    result = CliRunner().invoke(main, ["inspect", str(folder)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "rep\\x1b[2J\\x07" in result.output
