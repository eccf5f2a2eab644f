"""molgen.sampling.config: how to sample, as one checked SamplingConfig (a bad value or an unknown option is an error
naming it), and the per-sample condition and size tables a request turns into."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

from molgen.prior.config import PriorConfig
from molgen.sampling.config import SamplingConfig, condition_table, size_rows

CPU = torch.device("cpu")


def test_defaults_leave_the_model_its_own_choices():
    config = SamplingConfig()
    model_defaults = ("temperature", "top_p", "repairs", "candidates", "selection", "calibrated", "steps", "sampler")
    assert all(getattr(config, name) is None for name in model_defaults)
    assert (config.guidance_scale, config.decoding, config.properties, config.batch_size, config.property_guidance) == (1.0, "valence", True, 512, 0.0)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("temperature", 0, "temperature=0: must be a finite number > 0"),
        ("temperature", -1.0, "temperature=-1.0: must be a finite number > 0"),
        ("temperature", math.inf, "temperature=inf: must be a finite number > 0"),
        ("temperature", "hot", "temperature='hot': must be a finite number > 0"),
        ("temperature", True, "temperature=True: must be a finite number > 0"),
        ("guidance_scale", -0.5, "guidance_scale=-0.5: must be a finite number >= 0"),
        ("guidance_scale", math.nan, "guidance_scale=nan: must be a finite number >= 0"),
        ("property_guidance", -1, "property_guidance=-1: must be a finite number >= 0"),
        ("decoding", "greedy", "decoding='greedy': must be one of ('raw', 'valence')"),
        ("properties", "yes", "properties='yes': must be True or False"),
        ("batch_size", 0, "batch_size=0: must be a whole number >= 1"),
        ("batch_size", 2.5, "batch_size=2.5: must be a whole number >= 1"),
        ("batch_size", True, "batch_size=True: must be a whole number >= 1"),
        ("top_p", 0, "top_p=0: must be a finite number > 0"),
        ("top_p", 1.5, "top_p=1.5: must be a number in (0, 1] (1 turns nucleus sampling off)"),
        ("repairs", -1, "repairs=-1: must be a whole number >= 0"),
        ("repairs", 1.0, "repairs=1.0: must be a whole number >= 0"),
        ("candidates", 0, "candidates=0: must be a whole number >= 1"),
        ("selection", "top", "selection='top': must be one of ('draw', 'best')"),
        ("calibrated", "yes", "calibrated='yes': must be True, False or None (the model's default)"),
        ("steps", 0, "steps=0: must be a whole number >= 1"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_option_and_what_would_be_right(option, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SamplingConfig(**{option: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        SamplingConfig().replace(**{option: value})  # checked however the config is made


def test_good_values_are_kept():
    config = SamplingConfig(
        temperature=0.8, guidance_scale=0, decoding="raw", properties=False, batch_size=np.int64(64), top_p=1, repairs=0, property_guidance=2.0,
        candidates=4, selection="best", calibrated=False, steps=8, sampler="heun",
    )  # fmt: skip
    assert (config.temperature, config.batch_size, config.top_p, config.candidates, config.sampler) == (0.8, 64, 1, 4, "heun")


def test_replace_changes_some_fields_and_names_unknown_options():
    base = SamplingConfig(temperature=0.9)
    changed = base.replace(batch_size=8, top_p=0.5)
    assert (changed.batch_size, changed.top_p, changed.temperature) == (8, 0.5, 0.9)
    assert base.batch_size == 512 and base.top_p is None  # the original is unchanged
    assert base.replace() is base
    with pytest.raises(TypeError, match=re.escape("unknown sampling option(s) ['restarts', 'validity_guidance']; the options are [")) as error:
        base.replace(restarts=2, validity_guidance=0.1)
    assert "'repairs'" in str(error.value) and "'temperature'" in str(error.value)  # the known ones are listed
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.temperature = 1.0  # type: ignore[misc]


def _prior_config() -> PriorConfig:
    return PriorConfig(latent_dim=2, max_nodes=10, property_names=["QED", "logP"], property_mean=[0.5, 2.0], property_std=[0.1, 1.0])


def test_condition_table_normalises_the_targets_of_each_row():
    config = _prior_config()
    values, given = condition_table(config, {"logP": 3.0}, 3, CPU)  # one mapping: every row's
    assert given.tolist() == [[False, True]] * 3
    torch.testing.assert_close(values[:, 1], torch.ones(3))  # (3.0 - 2.0) / 1.0
    values, given = condition_table(config, [{"QED": 0.7}, None, {"QED": 0.5, "logP": 0}], 3, CPU)
    assert given.tolist() == [[True, False], [False, False], [True, True]]
    torch.testing.assert_close(values, torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, -2.0]]))
    assert condition_table(config, None, 3, CPU) is None
    assert condition_table(config, [{}, None, {}], 3, CPU) is None  # no row gives a target: unconditional
    with pytest.raises(ValueError, match=r"conditions\[1\]: condition 'pIC50': this prior is conditioned on \['QED', 'logP'\] only"):
        condition_table(config, [None, {"pIC50": 7.0}, None], 3, CPU)


def test_size_rows_take_one_size_for_all_or_one_per_sample():
    config = _prior_config()
    assert size_rows(config, None, 3) is None  # drawn from the training distribution
    assert size_rows(config, 4, 3).tolist() == [4, 4, 4]
    assert size_rows(config, np.array([1, 10, 5]), 3).tolist() == [1, 10, 5]
    with pytest.raises(ValueError, match="num_nodes=11: must be a whole number between 1 and this model's max_nodes=10"):
        size_rows(config, 11, 3)
    with pytest.raises(ValueError, match="num_nodes holds 2 sizes for 3 samples"):
        size_rows(config, [4, 5], 3)
