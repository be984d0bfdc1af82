"""The recipe loader: typed parsing, and a precise error for each kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from curate.recipe import MixtureSpec, Recipe, RecipeError, load_recipe

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "models" / "tokenizer" / "tokenizer.json"
WARCS = ROOT / "tests" / "data" / "warc"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def base(extra: str = "", sources: str | None = None, stages: str = "") -> str:
    sources = (
        sources
        or f"""
    sources:
      - name: web
        kind: warc
        paths: ["{WARCS}/*.warc.gz"]
    """
    )
    stages = (
        stages
        or """
    stages:
      - stage: extract
    """
    )
    return f"""
    name: t
    output: /tmp/curate-test-out
    tokenizer:
      path: {TOKENIZER}
    {textwrap.dedent(sources).strip().replace(chr(10), chr(10) + "    ")}
    {textwrap.dedent(stages).strip().replace(chr(10), chr(10) + "    ")}
    {extra}
    """


def error_of(tmp_path: Path, body: str) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        load_recipe(str(write(tmp_path, body)))
    return info.value


def test_demo_recipe_parses_into_typed_objects():
    recipe = load_recipe(str(ROOT / "pipelines" / "recipes" / "demo.yaml"))
    assert isinstance(recipe, Recipe)
    assert recipe.name == "demo"
    assert [s.kind for s in recipe.sources] == ["warc"]
    assert recipe.stages[0].kind == "extract"
    assert len(recipe.input_files(recipe.sources[0])) == 3
    assert len(recipe.fingerprint()) == 64


def test_valid_minimal_recipe(tmp_path):
    recipe = load_recipe(str(write(tmp_path, base())))
    assert recipe.shards.num_shards == 4
    assert recipe.spark.master == "local[*]"
    assert recipe.mixture is None


def test_unknown_top_level_key(tmp_path):
    e = error_of(tmp_path, base("outptu: x"))
    assert e.file == "recipe.yaml" and e.path == "outptu"
    assert "unknown key" in e.message and "output" in e.message


def test_unknown_stage_key_names_its_path(tmp_path):
    e = error_of(
        tmp_path,
        base(
            stages="""
    stages:
      - stage: extract
        extractorr: fast
    """
        ),
    )
    assert e.path == "stages[0].extractorr"
    assert "unknown key" in str(e)


def test_wrong_type_names_key_and_expectation(tmp_path):
    e = error_of(tmp_path, base("shards:\n      num_shards: many"))
    assert e.path == "shards.num_shards"
    assert "expected an integer, got 'many'" in str(e)
    assert str(e).startswith("recipe.yaml: shards.num_shards: ")


def test_an_ngram_size_left_out_turns_its_gopher_rule_off_and_null_is_refused(tmp_path):
    stages = """
    stages:
      - stage: extract
      - stage: gopher_repetition
        max_top_ngram_char_frac: {{3: 0.18, 4: {limit}}}
    """
    recipe = load_recipe(str(write(tmp_path, base(stages=stages.format(limit="0.16")))))
    assert recipe.stages[1].params.max_top_ngram_char_frac == {3: 0.18, 4: 0.16}
    e = error_of(tmp_path, base(stages=stages.format(limit="null")))
    assert e.path == "stages[1].max_top_ngram_char_frac.4"
    assert "expected a number, got None" in str(e)


def test_wrong_literal_lists_choices(tmp_path):
    e = error_of(
        tmp_path,
        base(
            stages="""
    stages:
      - stage: extract
        extractor: magic
    """
        ),
    )
    assert e.path == "stages[0].extractor"
    assert "'trafilatura'" in e.message and "'fast'" in e.message


def test_unknown_stage(tmp_path):
    e = error_of(
        tmp_path,
        base(
            stages="""
    stages:
      - stage: extract
      - stage: dedupe
    """
        ),
    )
    assert e.path == "stages[1].stage"
    assert "unknown stage 'dedupe'" in e.message and "dedup" in e.message


def test_missing_input_files(tmp_path):
    e = error_of(
        tmp_path,
        base(
            sources="""
    sources:
      - name: web
        kind: warc
        paths: ["/nonexistent/*.warc.gz"]
    """
        ),
    )
    assert e.path == "sources[0].paths"
    assert "no file matches" in e.message


def test_missing_tokenizer_file(tmp_path):
    body = base().replace(str(TOKENIZER), "/nonexistent/tokenizer.json")
    e = error_of(tmp_path, body)
    assert e.path == "tokenizer.path" and "file not found" in e.message


@pytest.mark.parametrize("weight", ["0", "-1", "0.0"])
def test_weight_must_be_positive(tmp_path, weight):
    e = error_of(
        tmp_path,
        base(
            sources=f"""
    sources:
      - name: web
        kind: warc
        paths: ["{WARCS}/*.warc.gz"]
        weight: {weight}
    """
        ),
    )
    assert e.path == "sources[0].weight"
    assert "expected a positive number" in e.message


def test_mixture_weight_must_be_positive_and_name_a_source(tmp_path):
    e = error_of(tmp_path, base("mixture:\n      weights: {web: -2}"))
    assert e.path == "mixture.weights.web" and "positive" in e.message
    e = error_of(tmp_path, base("mixture:\n      weights: {webb: 1}"))
    assert e.path == "mixture.weights.webb" and "unknown source" in e.message


def test_weight_of_wrong_type(tmp_path):
    e = error_of(tmp_path, base("mixture:\n      weights: {web: heavy}"))
    assert e.path == "mixture.weights.web"
    assert "expected a number" in e.message


def test_missing_required_key(tmp_path):
    body = "\n".join(line for line in base().splitlines() if line.strip() != "name: t")
    e = error_of(tmp_path, body)
    assert e.path == "name" and "missing required key" in e.message


def test_extract_must_come_first_for_warc(tmp_path):
    e = error_of(
        tmp_path,
        base(
            stages="""
    stages:
      - stage: langid
    """
        ),
    )
    assert e.path == "stages" and "extract" in e.message


def test_duplicate_stage_names(tmp_path):
    e = error_of(
        tmp_path,
        base(
            stages="""
    stages:
      - stage: extract
      - stage: langid
      - stage: langid
    """
        ),
    )
    assert e.path == "stages[2].name" and "used twice" in e.message


def test_bad_yaml_and_missing_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="recipe.yaml: not valid YAML"):
        load_recipe(str(path))
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(str(tmp_path / "nope.yaml"))


def test_cli_check_fails_before_spark(tmp_path, capsys):
    from curate.pipeline import main

    path = write(tmp_path, base("shards:\n      num_shards: many"))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid recipe: recipe.yaml: shards.num_shards: expected an integer" in err


def test_fingerprint_ignores_spark_settings(tmp_path):
    a = load_recipe(str(write(tmp_path, base())))
    b = load_recipe(str(write(tmp_path, base("spark:\n      master: local[1]"))))
    c = load_recipe(str(write(tmp_path, base("seed: 7"))))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_a_language_split_changes_the_hash_only_when_set_and_refuses_a_mixture(tmp_path):
    plain = load_recipe(str(write(tmp_path, base())))
    assert "partition_by" not in plain.to_dict()["shards"]  # recipes written before the key keep their hash
    split = load_recipe(str(write(tmp_path, base("shards:\n      partition_by: language"))))
    assert split.shards.partition_by == "language" and split.fingerprint() != plain.fingerprint()
    e = error_of(tmp_path, base("shards:\n      partition_by: source"))
    assert e.path == "shards.partition_by" and "'language'" in e.message
    e = error_of(tmp_path, base("shards:\n      partition_by: language\n    mixture:\n      weights: {web: 1}"))
    assert e.path == "shards.partition_by" and "mixture" in e.message


def test_mixture_spec_defaults():
    assert MixtureSpec().upsample is True


def test_reference_documents_every_stage_key():
    import dataclasses

    from curate.recipe import STAGE_REGISTRY, stage_class

    doc = (ROOT / "docs" / "recipes.md").read_text()
    for kind in STAGE_REGISTRY:
        section = doc.split(f"### `{kind}`", 1)[1].split("\n### ", 1)[0]
        for f in dataclasses.fields(stage_class(kind).Params):
            assert f"| `{f.name}` |" in section, f"docs/recipes.md: stage {kind}: key {f.name} is undocumented"
    for top in (
        "name",
        "output",
        "sources",
        "stages",
        "tokenizer",
        "shards",
        "mixture",
        "spark",
        "seed",
        "storage_options",
        "reading",
        "work_dir",
    ):
        assert f"| `{top}` |" in doc
    from curate.recipe import ReadingSpec, SourceSpec

    for spec, heading in ((SourceSpec, "## `sources[]`"), (ReadingSpec, "## `reading`")):
        section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(spec):
            assert f"| `{f.name}` |" in section, f"docs/recipes.md: {heading}: key {f.name} is undocumented"


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines" / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    recipe = load_recipe(str(path), check_files=False)
    outside = [p for source in recipe.sources for p in source.paths if p.startswith("../")]
    # recipes over the shared corpus name it next to the clone, where a fresh clone may not have it
    assert all(p.startswith("../shared/data/") for p in outside), outside
    if not outside:
        load_recipe(str(path))  # inputs shipped with the repository must exist


def test_unknown_source_kind_lists_the_readers(tmp_path):
    e = error_of(
        tmp_path,
        base(
            sources=f"""
    sources:
      - name: web
        kind: tsv
        paths: ["{WARCS}/*.warc.gz"]
    """
        ),
    )
    assert e.path == "sources[0].kind"
    assert e.message == "unknown source kind 'tsv'; expected one of: warc, parquet, jsonl, run"


def test_a_protocol_without_its_package_is_named_before_spark(tmp_path):
    """fsspec knows the protocol but its package is not installed here (gcsfs is an extra).

    Nothing is fetched: fsspec raises ImportError before any request. Where someone installed
    the extra, the missing-package error cannot happen, and listing would need Google's servers."""
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("the gcs extra (gcsfs) is installed here, so there is no missing package to name; make demo never installs it")
    e = str(
        error_of(
            tmp_path,
            base(
                sources="""
    sources:
      - name: web
        kind: warc
        paths: ["gs://no-such-bucket.invalid/crawl/*.warc.gz"]
"""
            ),
        )
    )
    assert "sources[0].paths: cannot list the files" in e and "gcsfs" in e
