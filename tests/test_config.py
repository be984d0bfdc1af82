"""curate/config.py: one converter and one merge for recipes, trainer configs and ablations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from curate.config import ConfigError, deep_merge, from_dict
from curate.recipe import load_recipe
from recipe_util import one_stage_recipe
from trainer.train import load_config


@dataclass
class Inner:
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.inner.rate > 1:
            raise ValueError("inner.rate must be <= 1")


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"x": 1, "y": {"z": 2}}, "b": [1, 2], "c": "keep"}
    merged = deep_merge(base, {"a": {"y": {"w": 3}}, "b": [3], "d": None})
    assert merged == {"a": {"x": 1, "y": {"z": 2, "w": 3}}, "b": [3], "c": "keep", "d": None}
    assert base == {"a": {"x": 1, "y": {"z": 2}}, "b": [1, 2], "c": "keep"}  # not modified
    assert deep_merge({"a": "text"}, {"a": {"x": 1}}) == {"a": {"x": 1}}


def test_from_dict_fills_defaults_and_converts():
    obj = from_dict(Outer, {"name": "n", "inner": {"rate": 1}, "tags": "one"})
    assert obj == Outer(name="n", inner=Inner(rate=1.0, mode="a"), tags=["one"])
    assert isinstance(obj.inner.rate, float)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({}, "c.yaml: name: missing required key; expected a string"),
        ({"name": "n", "inner": {"rat": 1}}, "c.yaml: inner.rat: unknown key; expected one of: rate, mode"),
        ({"name": "n", "inner": {"mode": "c"}}, "c.yaml: inner.mode: expected one of 'a', 'b', got 'c'"),
        ({"name": "n", "tags": [1]}, "c.yaml: tags[0]: expected a string, got 1"),
        ({"name": "n", "inner": {"rate": 2}}, "c.yaml: (top level): inner.rate must be <= 1"),
    ],
)
def test_from_dict_names_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, raw, "", "c.yaml")
    assert str(info.value) == message


def test_a_recipe_override_keeps_the_sections_other_keys(tmp_path):
    # `curate ablate --tokenizer` overrides tokenizer.path: the recipe's eos_token and
    # batch_size must survive (a shallow merge dropped them).
    data = one_stage_recipe(tmp_path, "Some text.", {"stage": "url_filter"})
    data["tokenizer"].update(eos_token="<|endoftext|>", batch_size=7)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(str(path), overrides={"tokenizer": {"path": data["tokenizer"]["path"]}})
    assert (recipe.tokenizer.batch_size, recipe.tokenizer.eos_token) == (7, "<|endoftext|>")


def test_a_trainer_override_merges_the_same_way(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(
        yaml.safe_dump({"out_dir": str(tmp_path / "out"), "data": {"train": "x"}, "optim": {"lr": 0.01, "warmup_steps": 3, "max_steps": 5}})
    )
    config = load_config(str(path), overrides={"optim": {"lr": 0.02}})
    assert (config.optim.lr, config.optim.warmup_steps, config.optim.max_steps) == (0.02, 3, 5)
