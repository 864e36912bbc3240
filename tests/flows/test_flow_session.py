"""What a flow session asks of the trained backbone: BatchNorm, and the random init's kwargs."""

from types import SimpleNamespace

import pytest

from flows.flow_session import FlowSession


def _session(monkeypatch, backbone: str, **method) -> tuple[FlowSession, list]:
    s = FlowSession("f", "config.yaml", [], [], None, None)
    cfg = SimpleNamespace(backbone=backbone, backbone_kwargs={}, **method)
    monkeypatch.setattr(s, "section", lambda stage: SimpleNamespace(method=cfg))
    calls = []
    monkeypatch.setattr(s, "random_backbone", lambda *args: calls.append(args))
    return s, calls


@pytest.mark.parametrize(("backbone", "bn"), [("resnet18", True), ("vit_small_patch16", False)])
def test_batchnorm_comes_from_the_backbone_record(monkeypatch, backbone, bn):
    s, _ = _session(monkeypatch, backbone)
    assert s.has_batchnorm("pretrain_x") is bn


def test_a_random_vit_gets_the_methods_position_table(monkeypatch):
    s, calls = _session(monkeypatch, "vit_test_patch16", pos_embed="sincos")
    s.random_init("pretrain_x", seed=3)
    assert calls == [("vit_test_patch16", {"pos_embed": "sincos"}, 3)]
    s, calls = _session(monkeypatch, "resnet_test", pos_embed="sincos")
    s.random_init("pretrain_x")
    assert calls == [("resnet_test", {}, 0)]


def test_an_unregistered_backbone_is_an_error(monkeypatch):
    s, _ = _session(monkeypatch, "convnext_tiny")
    with pytest.raises(ValueError, match="unknown backbone 'convnext_tiny'"):
        s.has_batchnorm("pretrain_x")
