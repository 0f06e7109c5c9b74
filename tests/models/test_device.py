"""CPU capability detection (siamkpn.utils.device) checked against this machine's own /proc/cpuinfo flags."""
from __future__ import annotations

import pytest
import torch

from siamkpn.utils import device
from siamkpn.utils.device import capability_from_flags, capability_line, cpu_capability, cpuinfo_flags

FLAGS = cpuinfo_flags()
needs_cpuinfo = pytest.mark.skipif(not FLAGS or "avx" not in FLAGS,
                                   reason="no x86 /proc/cpuinfo flags on this machine to compare with")

SAPPHIRE_RAPIDS = "fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"
HASWELL = "fpu sse2 avx avx2 fma"


@pytest.fixture
def fresh_detection():
    """cpu_capability() is cached; clear it around a test that changes what it sees."""
    device.cpu_capability.cache_clear()
    yield
    device.cpu_capability.cache_clear()


@needs_cpuinfo
def test_detection_agrees_with_this_machines_cpu_flags():
    cap = cpu_capability()
    assert cap.avx2 == ("avx2" in FLAGS)
    assert cap.avx512 == ({"avx512f", "avx512bw"} <= FLAGS)
    assert cap.avx512_bf16 == ("avx512_bf16" in FLAGS)
    assert cap.amx == ("amx_tile" in FLAGS and bool({"amx_bf16", "amx_int8"} & FLAGS))
    native = "avx512_bf16" in FLAGS or {"amx_tile", "amx_bf16"} <= FLAGS
    assert device.cpu_has_native_bf16() == native  # the old private probe said False on AVX512-BF16 here
    assert cap.int8_dot == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & FLAGS)


@needs_cpuinfo
def test_the_inference_and_trainer_modules_use_the_same_answer():
    from siamkpn.engine import trainer
    from siamkpn.models import inference

    assert inference.cpu_has_native_bf16 is device.cpu_has_native_bf16
    assert trainer.cpu_has_native_bf16 is device.cpu_has_native_bf16


@needs_cpuinfo
def test_cpuinfo_fallback_without_torchs_api_gives_the_same_answer(monkeypatch, fresh_detection):
    with_torch = cpu_capability()
    device.cpu_capability.cache_clear()
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    fallback = cpu_capability()
    assert fallback.source == "/proc/cpuinfo"
    for attr in ("avx2", "avx512", "avx512_bf16", "amx", "native_bf16", "int8_dot"):
        assert getattr(fallback, attr) == getattr(with_torch, attr), attr


def test_no_source_at_all_means_no_native_bf16(monkeypatch, fresh_detection):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(device, "cpuinfo_flags", lambda text=None: frozenset())
    cap = cpu_capability()
    assert cap.source == "none" and not cap.native_bf16 and cap.summary() == "no AVX2"


def test_cpuinfo_parsing_and_machine_kinds():
    text = f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {SAPPHIRE_RAPIDS}\n\nprocessor\t: 1\nflags\t: fpu\n"
    flags = cpuinfo_flags(text)
    assert {"avx512_bf16", "amx_tile"} <= flags and "fpu" in flags
    spr = capability_from_flags(flags)
    assert spr.native_bf16 and spr.int8_dot and spr.amx
    assert spr.summary() == "AVX2 AVX512 VNNI AVX512-BF16 AMX"
    hsw = capability_from_flags(HASWELL.split())
    assert not hsw.native_bf16 and not hsw.int8_dot and hsw.summary() == "AVX2"
    assert cpuinfo_flags("model name : x\n") == frozenset()


def test_capability_line_names_the_instruction_sets_and_threads():
    line = capability_line(threads=3)
    assert cpu_capability().summary() in line and "3 threads" in line
    assert cpu_capability().torch_kernels == torch.backends.cpu.get_cpu_capability()


def test_onednn_isa_cap_drops_the_flags_above_it():
    spr = SAPPHIRE_RAPIDS.split()
    as_avx2 = capability_from_flags(spr, isa_cap="AVX2")
    assert as_avx2.avx2 and not as_avx2.avx512 and not as_avx2.native_bf16 and not as_avx2.int8_dot
    assert as_avx2.summary() == "AVX2 (oneDNN capped at AVX2 by ONEDNN_MAX_CPU_ISA)"
    as_vnni = capability_from_flags(spr, isa_cap="avx512_core_vnni")  # oneDNN accepts any case
    assert as_vnni.avx512 and as_vnni.int8_dot and not as_vnni.native_bf16 and not as_vnni.amx
    assert capability_from_flags(spr, isa_cap="AVX512_CORE_BF16").native_bf16
    for no_cap in ("ALL", "AVX512_CORE_AMX", "", "nonsense"):  # nothing dropped: no cap reported
        full = capability_from_flags(spr, isa_cap=no_cap or None)
        assert full.native_bf16 and full.amx and full.isa_cap is None, no_cap
    assert capability_from_flags(HASWELL.split(), isa_cap="AVX2").isa_cap is None  # caps nothing this CPU has
    assert device.onednn_isa_cap({"DNNL_MAX_CPU_ISA": "avx2"}) == "AVX2"  # the old variable name
    assert device.onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "ALL"}) is None


@needs_cpuinfo
def test_fast_mode_follows_the_isa_cap_of_this_process(monkeypatch, fresh_detection):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN emulate bf16 (several times slower than float32 where it is capped), so
    fast mode must stay float32 there even on a bf16 CPU, and say why."""
    from siamkpn.models.inference import describe, prepare_for_inference
    from siamkpn.models.model_builder import ModelBuilder
    from tests.helpers import tiny_cfg

    native = cpu_capability()
    above_avx2 = native.avx512 or native.native_bf16 or native.amx  # what a cap at AVX2 takes away here
    device.cpu_capability.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = cpu_capability()
    assert not capped.native_bf16
    if above_avx2:
        assert capped.summary().startswith("AVX2 (oneDNN capped")
    else:  # an AVX2-only CPU: the cap removes nothing, so none is reported
        assert capped.isa_cap is None and capped.summary() == native.summary()
    fast = prepare_for_inference(ModelBuilder(tiny_cfg()).eval(), fast=True, device="cpu")
    assert fast.dtype == torch.float32
    if above_avx2:
        assert "capped at AVX2" in describe(fast)
