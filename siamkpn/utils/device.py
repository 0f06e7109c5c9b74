"""What this machine computes natively: CPU instruction sets (AVX2, AVX512, AVX512-BF16, VNNI, AMX) and GPU bf16.

Detection order: torch's public `torch.cpu.get_capabilities()` (torch >= 2.x, the cpuinfo library), then the
flags line of /proc/cpuinfo (Linux) when torch has no such API; torch's kernel dispatch level
(`torch.backends.cpu.get_cpu_capability()`) is reported beside it, because ATEN_CPU_CAPABILITY can hold
torch's own kernels below what the CPU offers. ONEDNN_MAX_CPU_ISA (or its old name DNNL_MAX_CPU_ISA) caps
what oneDNN, which runs torch's convolutions, may use: the flags above that cap are dropped, so a CPU told to
act as AVX2-only is treated as one (that is also how AVX2 machines are emulated on a wider CPU in
benchmarks/track_speed.py). Private probes (`torch._C._cpu._is_*`) are not used: they
come and go between builds, and a missing probe silently meant "no bf16" before.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Optional

__all__ = ["CpuCapability", "cpu_capability", "capability_from_flags", "cpuinfo_flags", "onednn_isa_cap",
           "cpu_has_native_bf16", "capability_line"]

# torch.cpu.get_capabilities() key -> the /proc/cpuinfo flag with the same meaning
_CPUINFO_NAMES = {"avx2": "avx2", "avx512_f": "avx512f", "avx512_bw": "avx512bw", "avx512_vnni": "avx512_vnni",
                  "avx_vnni": "avx_vnni", "avx512_bf16": "avx512_bf16", "amx_tile": "amx_tile",
                  "amx_bf16": "amx_bf16", "amx_int8": "amx_int8", "fma3": "fma"}


_AVX2 = frozenset({"avx2", "fma"})
_AVX512 = _AVX2 | {"avx512f", "avx512bw"}
_VNNI = {"avx512_vnni", "avx_vnni"}
# the flags a oneDNN ISA cap can take away (the others, e.g. sse2, stay whatever the cap)
_CAPPABLE = _AVX512 | _VNNI | {"avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "avx512_fp16"}
# oneDNN ISA name (ONEDNN_MAX_CPU_ISA) -> the flags oneDNN may use at that cap; names not listed cap nothing
_ONEDNN_ISA_FLAGS = {
    "SSE41": frozenset(), "AVX": frozenset(), "AVX2": _AVX2, "AVX2_VNNI": _AVX2 | {"avx_vnni"},
    "AVX2_VNNI_2": _AVX2 | {"avx_vnni"}, "AVX512_CORE": _AVX512, "AVX512_CORE_VNNI": _AVX512 | _VNNI,
    "AVX512_CORE_BF16": _AVX512 | _VNNI | {"avx512_bf16"}, "AVX512_CORE_FP16": _AVX512 | _VNNI | {"avx512_bf16"},
}


def _known_cap(value: Optional[str]) -> Optional[str]:
    """`value` as a oneDNN ISA name that caps something (upper case), or None (unset, ALL, AMX levels, unknown)."""
    value = (value or "").strip().upper()
    return value if value in _ONEDNN_ISA_FLAGS else None


def onednn_isa_cap(environ: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The ISA cap set by ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA when it is one below the widest levels, else None
    (whether it drops any flag depends on the CPU: see `capability_from_flags`)."""
    environ = os.environ if environ is None else environ
    return _known_cap(environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA"))


@dataclass(frozen=True)
class CpuCapability:
    """The CPU features that decide which inference path is fast here (see `cpu_capability()`)."""

    name: str
    flags: FrozenSet[str]  # /proc/cpuinfo spellings (avx2, avx512f, avx512_bf16, amx_bf16, ...)
    source: str  # "torch.cpu.get_capabilities", "/proc/cpuinfo" or "none"
    torch_kernels: str  # torch.backends.cpu.get_cpu_capability(): the level torch's own kernels use
    isa_cap: Optional[str] = None  # ONEDNN_MAX_CPU_ISA when it removed flags (already applied to `flags`)

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags and "avx512bw" in self.flags

    @property
    def avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def amx(self) -> bool:
        return "amx_tile" in self.flags and ("amx_bf16" in self.flags or "amx_int8" in self.flags)

    @property
    def native_bf16(self) -> bool:
        """bf16 dot products in hardware (AVX512-BF16 or AMX-BF16): there bf16 beats float32."""
        return self.avx512_bf16 or ("amx_tile" in self.flags and "amx_bf16" in self.flags)

    @property
    def int8_dot(self) -> bool:
        """int8 dot products in hardware (AVX512-VNNI, AVX-VNNI or AMX-INT8): where int8 pays most."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    def summary(self) -> str:
        """The instruction sets that matter here, widest last: e.g. 'AVX2 AVX512 VNNI AVX512-BF16 AMX'."""
        parts = [label for label, present in (("AVX2", self.avx2), ("AVX512", self.avx512), ("VNNI", self.int8_dot),
                                               ("AVX512-BF16", self.avx512_bf16), ("AMX", self.amx)) if present]
        text = " ".join(parts) or "no AVX2"
        return f"{text} (oneDNN capped at {self.isa_cap} by ONEDNN_MAX_CPU_ISA)" if self.isa_cap else text


def cpuinfo_flags(text: Optional[str] = None) -> FrozenSet[str]:
    """The feature flags of the first processor in /proc/cpuinfo (or in `text`); empty when unreadable."""
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            return frozenset(value.split())
    return frozenset()


def _cpu_name(text: Optional[str] = None) -> str:
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _torch_flags() -> Optional[FrozenSet[str]]:
    """Flags from torch.cpu.get_capabilities() in /proc/cpuinfo spelling, or None without that API."""
    try:
        import torch
    except ImportError:
        return None
    get = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get is None:
        return None
    try:
        caps: Dict[str, object] = dict(get())
    except Exception:  # noqa: BLE001 - a failing probe means "use the fallback", never a crash
        return None
    return frozenset(_CPUINFO_NAMES.get(key, key) for key, value in caps.items() if value is True)


def _torch_kernels() -> str:
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError):
        return "unknown"


def capability_from_flags(flags: Iterable[str], name: str = "CPU", source: str = "given",
                          torch_kernels: str = "unknown", isa_cap: Optional[str] = None) -> CpuCapability:
    """A CpuCapability from /proc/cpuinfo-style flags (for tests and for machines described elsewhere), with the
    flags above oneDNN's ISA cap `isa_cap` (a ONEDNN_MAX_CPU_ISA value) dropped."""
    flags = frozenset(flags)
    cap = _known_cap(isa_cap)
    if cap is not None:
        allowed = _ONEDNN_ISA_FLAGS[cap]
        capped = frozenset(f for f in flags if f in allowed or f not in _CAPPABLE)
        cap = cap if capped != flags else None
        flags = capped
    return CpuCapability(name, flags, source, torch_kernels, cap)


@functools.lru_cache(maxsize=1)
def cpu_capability() -> CpuCapability:
    """This machine's CPU features as oneDNN may use them: torch's public API first, /proc/cpuinfo flags as the
    fallback, capped by ONEDNN_MAX_CPU_ISA (cached)."""
    flags, source = _torch_flags(), "torch.cpu.get_capabilities"
    if not flags:
        flags, source = cpuinfo_flags(), "/proc/cpuinfo"
    if not flags:
        source = "none"
    return capability_from_flags(flags or frozenset(), _cpu_name(), source, _torch_kernels(), onednn_isa_cap())


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 beats float32."""
    return cpu_capability().native_bf16


def capability_line(threads: Optional[int] = None) -> str:
    """One line naming the machine for every benchmark figure: CPU, instruction sets, torch kernels, threads."""
    cap = cpu_capability()
    if threads is None:
        try:
            import torch

            threads = torch.get_num_threads()
        except ImportError:
            threads = 0
    return (f"CPU {cap.name}: {cap.summary()} (from {cap.source}; torch kernels {cap.torch_kernels}); "
            f"{threads} threads of {os.cpu_count()} cores")
