"""examples/hf_generate.py as a test: a random-initialised transformers Llama
whose attention runs through a kvserve paged cache generates greedily the same
tokens as eager attention (f32 on the CPU, token for token; bf16 on a GPU,
where a divergence is printed with the logit gap that explains it)."""

import importlib.util
import pathlib

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "hf_generate.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("hf_generate", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_f32_cpu_generation_is_token_for_token_identical(example, capsys):
    assert example.main(["--prompts", "8", "--new-tokens", "48"]) == 0
    assert "token-for-token identical" in capsys.readouterr().out


def test_a_wrong_cache_is_caught(example):
    # The comparison can fail: the kvserve model with one layer's weights changed.
    torch.manual_seed(0)
    config = example.tiny_llama_config()
    model = example.LlamaForCausalLM._from_config(config, attn_implementation="kvserve").eval()
    prompts = [[1, 2, 3, 4, 5], [7, 8, 9]]
    ours, _ = example.generate_kvserve(model, prompts, 8)
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)
    theirs, logits = example.generate_kvserve(model, prompts, 8)
    assert not example.compare(ours, theirs, logits, torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_cuda_generation(example, capsys):
    status = example.main(["--device", "cuda", "--dtype", "bfloat16", "--prompts", "8", "--new-tokens", "48"])
    out = capsys.readouterr().out
    print(out)
    assert status == 0, out  # identical, or every first divergence a near tie under bf16 rounding
