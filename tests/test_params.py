import pytest

from deliberate import BadInput, SamplingParams


@pytest.mark.parametrize("kw, msg", [
    ({"n": 0}, "n must be >= 1, got 0."),
    ({"top_p": 1.5}, "top_p must be in (0, 1], got 1.5."),
    ({"temperature": -1}, "temperature must be >= 0, got -1."),
    ({"max_tokens": 0}, "max_tokens must be >= 1, got 0."),
    ({"logprobs": 50}, "logprobs must be in [0, 20], got 50."),
])
def test_invalid_params_name_the_rule(kw, msg):
    with pytest.raises(BadInput) as e:
        SamplingParams(**kw)
    assert str(e.value) == msg


def test_a_lone_stop_string_is_one_stop():
    assert SamplingParams(stop="\n").stop == ("\n",)
    assert SamplingParams(temperature=0).greedy
