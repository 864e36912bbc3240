"""Every list of the method flows agrees with the flows registry (one place to add a method)."""

from pathlib import Path

import yaml

from app.commands import method_flow_names
from flows.methods import METHOD_FLOWS

REPO = Path(__file__).resolve().parents[2]


def test_the_cli_maps_shards_for_exactly_the_method_flows():
    """`--dask-workers` maps shards only for the names of method_flow_names()."""
    assert method_flow_names() == set(METHOD_FLOWS)


def test_prefect_yaml_deploys_every_method_flow_as_demo_and_paper():
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    by_name: dict[str, set[str]] = {}
    for d in deployments:
        flow = Path(d["entrypoint"].split(":")[0]).stem
        by_name.setdefault(d["name"], set()).add(flow)
    assert set(METHOD_FLOWS) <= by_name["demo"], by_name["demo"]
    assert set(METHOD_FLOWS) == by_name["paper"], by_name["paper"]


def test_every_registered_method_has_a_flow():
    from correlearn.pretrain import METHODS

    assert sorted(METHOD_FLOWS) == sorted(METHODS)


def test_every_method_has_its_configs():
    """A paper config, and a section of its training stage in the demo and the learning bench."""
    from correlearn.pretrain import METHODS

    specs = REPO / "data_specs"
    for name in ("demo.yaml", "learning.yaml"):
        sections = yaml.safe_load((specs / name).read_text())
        missing = [m for m, spec in METHODS.items() if spec.stage not in sections]
        assert not missing, f"{name} has no training section for {missing}"
    assert all((specs / f"paper_{m}.yaml").is_file() for m in METHODS)
