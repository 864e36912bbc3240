"""Every setting of every stage is checked when the config is read, before any stage starts."""

import pytest

from correlearn.config import ConfigError
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES


def _pipe(tmp_path, text: str, overrides=()) -> Pipeline:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    return Pipeline(cfg, STAGES, get_workspace(tmp_path / "home"), list(overrides))


@pytest.mark.parametrize(
    "stage, text, message",
    [
        ("eval_label_propagation", "{params: {short_sid: 64}}", "params.short_sid: unknown key"),
        ("eval_pose", "{params: {topk: many}}", "params.topk: Input should be a valid integer"),
        ("eval_parts", "{params: {radius: -1}}", "params.radius"),
        ("eval_finetune", "{hparams: {lr: 0.1}}", "hparams.lr: unknown key"),
        ("eval_finetune", "{hparams: {epochs: 0}}", "hparams.epochs: Input should be greater"),
        ("pretrain_byol", "{method: {image_size: 0}}", "method.image_size: Input should be"),
        ("pretrain_vfs", "{method: {backbone: resnet99}}", "unknown backbone 'resnet99'"),
        ("init_random", "{backbone: convnext}", "backbone: unknown backbone 'convnext'"),
        ("pretrain_siammae", "{train: {max_steps: 0}}", "train.max_steps: Input should be"),
        ("eval_knn", "{temprature: 0.1}", "temprature: unknown key"),
        ("eval_linear", "{epochs: 0}", "epochs: Input should be greater"),
        ("eval_svm", "{cost: [1.0]}", "cost: unknown key"),
        ("eval_tracking", "{params: {scale_lr: 2}}", "params.scale_lr: Input should be less"),
    ],
)
def test_a_bad_nested_setting_is_refused_when_read(tmp_path, stage, text, message):
    pipe = _pipe(tmp_path, f"{stage}: {text}\n")
    with pytest.raises(ConfigError) as err:
        pipe.section(stage)
    assert f"c.yaml: {stage}." in str(err.value) and message in str(err.value), str(err.value)


def test_the_good_values_pass_and_keep_the_key_material(tmp_path):
    pipe = _pipe(tmp_path, "eval_label_propagation: {params: {short_side: 64}}\n")
    assert pipe.section("eval_label_propagation").params == {"short_side": 64}


def test_a_section_that_is_not_a_mapping_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: pretrain_byol: must be a mapping"):
        _pipe(tmp_path, "pretrain_byol: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml: datasets.d: must be a mapping"):
        _pipe(tmp_path, "datasets: {d: [1, 2]}\n")


def test_an_error_from_set_blames_set_not_the_file(tmp_path):
    pipe = _pipe(
        tmp_path,
        "eval_label_propagation: {params: {short_side: 64}}\n",
        ["eval_label_propagation.params.short_sid=32"],
    )
    with pytest.raises(ConfigError) as err:
        pipe.section("eval_label_propagation")
    assert str(err.value) == "--set: eval_label_propagation.params.short_sid: unknown key"
    clean = _pipe(
        tmp_path,
        "eval_label_propagation: {params: {short_sid: 64}}\n",
        ["eval_label_propagation.max_frames=4"],
    )
    with pytest.raises(ConfigError, match=r"^c.yaml: eval_label_propagation.params.short_sid"):
        clean.section("eval_label_propagation")
