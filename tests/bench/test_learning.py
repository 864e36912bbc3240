"""bench/learning.py without training: its configs validate, rows and the picture are drawn.

The bench itself trains for about 50 minutes; here its config (CPU and ``--gpu``) is resolved with
every training stage's model and its table row and picture are made from a hand-written row.
"""

import learning
import pytest
import yaml

from correlearn.demo_tables import MethodRow
from correlearn.pretext.summary import PretextSummary
from correlearn.pretrain import METHODS


@pytest.mark.parametrize("gpu", [False, True])
def test_the_config_trains_on_sequences_outside_the_heldout_set(tmp_path, gpu):
    data = learning.REPO / "data" / "davis-mini"
    path, train = learning.write_config(data, tmp_path, gpu)
    cfg = yaml.safe_load(path.read_text())
    held = set(learning.sequences(learning.HELDOUT))
    assert train and not held & set(train)
    assert cfg["datasets"]["learn_train"]["sequences"] == train
    for spec in METHODS.values():
        section = spec.config.model_validate(cfg[spec.stage])
        assert section.val.dataset == "davis_heldout"
        assert section.train.max_steps == section.train.epochs * section.train.steps_per_epoch
    vfs = METHODS["vfs"].config.model_validate(cfg["pretrain_vfs"])
    assert (vfs.method.image_size, vfs.train.amp) == ((224, "bf16") if gpu else (96, "auto"))


def test_a_bench_made_of_heldout_sequences_only_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="no sequence outside the held-out set"):
        learning.write_config(learning.HELDOUT, tmp_path)


def test_row_and_picture(tmp_path):
    pretext = PretextSummary("recon_error", False, 0.5, [0.9, 0.95], {"copy_past": 0.7},
                             [(0, 0.92), (100, 0.6), (200, 0.5)])  # fmt: skip
    row = MethodRow("siammae", "siammae", "siammae_vit", 200, 0.55, 0.6, 0.5, [0.6, 0.61], 0.01,
                    None, -0.06, 30.8, 66.7, [(100, 0.56), (200, 0.55)], pretext)  # fmt: skip
    line = learning.row_line("siammae", row, 3.25)
    assert "recon_error 0.500 / 0.900 / 0.950 / copy_past 0.700 | yes" in line
    assert line.endswith("| no | 3.2 |")
    learning.draw([("siammae", row)], tmp_path / "learning.png")
    assert (tmp_path / "learning.png").stat().st_size > 10_000
