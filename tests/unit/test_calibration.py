"""Calibration: density ratios of whole-graph statistics between the data and a model's samples."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from molgen.calibration import INVALID_LOG_WEIGHT, Calibration, CalibrationConfig, file_fingerprint, statistics_key
from molgen.domains.molecule import MoleculeDomain
from molgen.sampling.guidance import Resampling


def _rows(pairs: list[tuple[int, int]]) -> list[dict[str, float]]:
    return [{"rings": r, "aromatic_rings": a} for r, a in pairs]


def test_statistics_key_joins_whole_numbers_in_the_named_order():
    assert statistics_key({"rings": 3.0, "aromatic_rings": 2.0}, ["rings", "aromatic_rings"]) == "3,2"
    assert statistics_key({"rings": 3.0, "aromatic_rings": 2.0}, ["aromatic_rings"]) == "2"
    assert statistics_key(None, ["rings"]) is None


def test_log_weights_are_the_ratio_of_data_to_model_shares():
    # the data: half 3-ring, half 2-ring molecules; the model: a quarter 3-ring, three quarters 2-ring
    data = _rows([(3, 2)] * 500 + [(2, 1)] * 500)
    model = _rows([(3, 2)] * 250 + [(2, 1)] * 750)
    calibration = Calibration.fit(data, model, ["rings", "aromatic_rings"], pseudo_count=1e-6)
    weights = np.exp(calibration.log_weights(_rows([(3, 2), (2, 1)])))
    np.testing.assert_allclose(weights, [0.5 / 0.25, 0.5 / 0.75], rtol=1e-4)
    # a value neither histogram saw is left alone; an invalid graph (None) is kept only when its whole group is
    unseen, invalid = calibration.log_weights([{"rings": 9, "aromatic_rings": 0}, None])
    assert unseen == 0.0 and invalid == INVALID_LOG_WEIGHT
    # resampling 1 of 2 candidates by these weights moves the model's 3-ring share from 1/4 toward 1/2
    rings = np.where(np.random.default_rng(1).random(20000) < 0.25, 3, 2)  # 10,000 groups of 2 model candidates
    scores = torch.as_tensor(calibration.log_weights(_rows([(int(r), int(r) - 1) for r in rings])))
    kept = rings[Resampling(2, calibrated=True).pick(scores, torch.Generator().manual_seed(0)).numpy()]
    # in expectation 1/16 (both 3-ring) + 6/16 x 2 / (2 + 2/3) (one of each) = 0.34375
    assert 0.33 < (kept == 3).mean() < 0.36, (kept == 3).mean()


def test_pseudo_counts_and_clipping_bound_rare_values():
    data = _rows([(4, 3)] * 10 + [(2, 1)] * 990)
    model = _rows([(2, 1)] * 1000)  # never drew the 4-ring value the data has
    calibration = Calibration.fit(data, model, ["rings", "aromatic_rings"], pseudo_count=1.0, max_log_ratio=2.0)
    rare, common = calibration.log_weights(_rows([(4, 3), (2, 1)]))
    assert rare == pytest.approx(2.0)  # log(11/1002 / (1/1002)) = 2.4, clipped
    assert common == pytest.approx(math.log((991 / 1002) / (1001 / 1002)))


def test_config_round_trips_and_refuses_what_cannot_work(tmp_path):
    calibration = Calibration.fit(_rows([(1, 1), (2, 1)]), _rows([(1, 1)]), ["rings", "aromatic_rings"], candidates=3, prior_fingerprint="abc")
    calibration.save(tmp_path / "calibration")
    again = Calibration.load(tmp_path / "calibration")
    assert again.config == calibration.config and again.log_ratios == calibration.log_ratios
    assert again.config.candidates == 3
    with pytest.raises(ValueError, match="at least one property"):
        CalibrationConfig([], {"1": 1}, {"1": 1})
    with pytest.raises(ValueError, match="candidates=0"):
        CalibrationConfig(["rings"], {"1": 1}, {"1": 1}, candidates=0)
    with pytest.raises(ValueError, match="non-empty"):
        Calibration.fit([None], _rows([(1, 1)]), ["rings"])


def test_means_and_summary_report_the_gap_being_corrected():
    calibration = Calibration.fit(_rows([(3, 2)] * 3 + [(2, 1)]), _rows([(2, 1)] * 3 + [(3, 2)]), ["rings", "aromatic_rings"])
    assert calibration.means()["rings"] == pytest.approx((2.75, 2.25))
    lines = calibration.summary()
    assert lines[0] == "rings per graph: data 2.750, model 2.250"
    assert lines[2].startswith("rings 3, aromatic_rings 2: weight ")


def test_a_stale_calibration_warns(tmp_path, caplog):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"first weights")
    calibration = Calibration.fit(_rows([(1, 1)]), _rows([(1, 1)]), ["rings"], prior_fingerprint=file_fingerprint(weights))
    assert calibration.check_prior(weights)
    weights.write_bytes(b"retrained weights")
    with caplog.at_level(logging.WARNING, logger="molgen.calibration"):
        assert not calibration.check_prior(weights)
    assert "stale" in caplog.text


def test_molecule_statistics_count_rings_and_aromatic_rings():
    domain = MoleculeDomain.fit(["c1ccc2ccccc2c1", "C1CCCCC1"])
    assert domain.statistics("c1ccc(cc1)C1CCCCC1") == {"rings": 2.0, "aromatic_rings": 1.0, "unusual_rings": 0.0}
    assert domain.statistics("c1ccc(cc1)C1CC1C1CCCCCC1") == {"rings": 3.0, "aromatic_rings": 1.0, "unusual_rings": 2.0}  # 3- and 7-membered
    assert domain.statistics("c1ccc2ccccc2c1", ["aromatic_rings"]) == {"aromatic_rings": 2.0}
    with pytest.raises(ValueError, match="not computed for molecules"):
        domain.statistics("CCO", ["QED"])
