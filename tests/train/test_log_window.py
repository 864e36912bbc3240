import math

import pytest
import torch

from correlearn.train.log_window import LogWindow


def test_flush_extends_history_and_averages_the_window():
    w = LogWindow()
    assert not w
    w.add(4, {"loss": torch.tensor(1.0), "aux": torch.tensor(3.0)})
    w.add(5, {"loss": torch.tensor(2.0)})
    w.add(6, {"loss": torch.tensor(4.0), "aux": torch.tensor(5.0)})
    history, last = [(3, 0.5)], {"old": 1.0}
    means, img_per_s = w.flush(history, last, imgs_per_step=8, where="run")
    assert history == [(3, 0.5), (4, 1.0), (5, 2.0), (6, 4.0)]
    assert last == {"loss": 4.0, "aux": 5.0}
    assert means == {"loss": 7 / 3, "aux": 4.0}  # "aux" averages the steps that logged it
    assert img_per_s > 0 and not w


def test_a_non_finite_loss_names_the_step_and_the_run():
    w = LogWindow()
    w.add(0, {"loss": torch.tensor(1.0)})
    w.add(1, {"loss": torch.tensor(math.nan)})
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 1 \(runs/x\)"):
        w.flush([], {}, 1, "runs/x")
