import pytest

from correlearn.config import ConfigError, StrictModel, apply_overrides, load_yaml, validate


class Inner(StrictModel):
    lr: float = 0.1
    sizes: list[int] = [1, 2]


class Outer(StrictModel):
    name: str = "x"
    inner: Inner = Inner()


def test_overrides_are_parsed_as_yaml():
    raw = apply_overrides({"inner": {"lr": 1.0}}, ["inner.lr=1e-3", "inner.sizes=[3, 4]", "name=y"])
    cfg = validate(Outer, raw)
    assert cfg.inner.lr == pytest.approx(1e-3)
    assert cfg.inner.sizes == [3, 4]
    assert cfg.name == "y"


def test_unknown_key_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"inner\.lrr: unknown key"):
        validate(Outer, {"inner": {"lrr": 1}}, "demo.yaml")


def test_wrong_type_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"demo.yaml: inner\.lr"):
        validate(Outer, {"inner": {"lr": "fast"}}, "demo.yaml")


def test_bad_override_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)


def test_key_material_drops_bookkeeping_fields():
    from pydantic import Field

    from correlearn.config import NOT_IN_KEY, key_material

    class Loop(StrictModel):
        lr: float = 0.1
        workers: int = Field(4, json_schema_extra=NOT_IN_KEY)

    class Stage(StrictModel):
        loop: Loop = Loop()
        size: tuple[int, int] = (1, 2)

    a = key_material(Stage())
    assert a == {"loop": {"lr": 0.1}, "size": [1, 2]}
    assert key_material(Stage(loop=Loop(workers=0))) == a
    assert key_material(Stage(loop=Loop(lr=0.2))) != a


def test_yaml_overrides_nested_defaults_field_by_field(tmp_path):
    """A stage whose default optimiser differs from the class default keeps it under overrides."""
    from pydantic import Field

    from correlearn.pipeline import Pipeline
    from correlearn.stage import StageSpec
    from correlearn.workspace import get_workspace

    class Stage(StrictModel):
        inner: Inner = Field(default_factory=lambda: Inner(lr=0.05, sizes=[7]))

    cfg = tmp_path / "c.yaml"
    cfg.write_text("s: {inner: {sizes: [8]}}\n")
    pipe = Pipeline(cfg, {"s": StageSpec("s", 1, Stage, lambda ctx: None)}, get_workspace(tmp_path))
    got = pipe.section("s")
    assert got.inner.lr == 0.05 and got.inner.sizes == [8]
    with pytest.raises(ConfigError, match=r"c.yaml: s.inner.lrr: unknown key"):
        pipe.section("s", overrides={"inner": {"lrr": 1}})
