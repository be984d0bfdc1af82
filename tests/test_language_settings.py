"""curate/language_settings.py: FineWeb-2's settings read from the shipped folder or another one."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from curate import language_settings
from curate.language_settings import SettingsFolder, language_script, settings_folder

SHIPPED_CONFIGS = resources.files("curate").joinpath("data/fineweb2/configs")


def test_a_pairs_settings_are_its_files_values():
    german = settings_folder().get("deu_Latn")
    assert german.language == "deu_Latn"
    assert "und" in german.stop_words and "für" in german.stop_words and len(german.stop_words) == 15
    assert german.language_score == 0.821
    assert (german.min_avg_word_length, german.max_avg_word_length) == (0.0, 15.0)
    assert german.max_non_alpha_words_ratio == 0.774
    assert german.dup_line_frac == 0.263
    assert german.top_n_grams == {2: 0.169, 3: 0.153, 4: 0.137}
    assert german.dup_n_grams == {5: 0.141, 6: 0.134, 7: 0.126, 8: 0.117, 9: 0.108, 10: 0.098}
    assert (german.line_punct_thr, german.new_line_ratio) == (0.0, 0.152)


@pytest.mark.parametrize(
    "code,pair",
    [
        ("de", "deu_Latn"),
        ("ru", "rus_Cyrl"),
        ("ar", "arb_Arab"),
        ("hi", "hin_Deva"),
        ("th", "tha_Thai"),
        ("zh", "cmn_Hani"),
        ("ja", "jpn_Jpan"),
        ("ko", "kor_Hang"),
    ],
)
def test_lid176_codes_map_to_pairs_with_settings(code, pair):
    assert language_script(code) == pair
    settings = settings_folder().get(code)
    assert settings is settings_folder().get(pair)  # read once
    assert settings.stop_words and settings.language == pair


def test_every_lid176_label_but_english_has_settings():
    pairs = language_settings.lid176_pairs()
    assert len(pairs) == 176
    # FineWeb-2 has no English (FineWeb is its English)
    assert [code for code in pairs if settings_folder().get(code) is None] == ["en"]


def test_an_unknown_language_has_no_settings_and_no_error():
    assert settings_folder().get("zzz_Zzzz") is None
    assert settings_folder().get("xx") is None
    assert settings_folder().get(None) is None
    assert language_script("not a code") is None


def test_another_folder_replaces_the_shipped_one(tmp_path):
    (tmp_path / "deu_Latn.yml").write_text("stopwords: [der, die]\nmax_avg_word_length: 12\ntop_n_grams: [[2, 0.5]]\n", encoding="utf-8")
    folder = SettingsFolder(str(tmp_path))
    folder.check()
    german = folder.get("de")
    assert german.stop_words == frozenset({"der", "die"}) and german.max_avg_word_length == 12.0
    assert german.top_n_grams == {2: 0.5} and german.dup_n_grams == {} and german.dup_line_frac is None
    assert folder.get("fr") is None
    with pytest.raises(ValueError, match="does not exist"):
        SettingsFolder(str(tmp_path / "missing")).check()


def test_the_shipped_folder_holds_fineweb2s_files():
    names = [entry.name for entry in SHIPPED_CONFIGS.iterdir()]
    assert len(names) == 1929 and all(n.endswith(".yml") for n in names)
    listing = resources.files("curate").joinpath("data/fineweb2/lid176_languages.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(listing)))
    assert sum(row["from"].startswith("curated") for row in rows) == 6
