"""The machine a number was measured on, as plain data for every record that holds a result.

Results differ across CPUs (STYLE.md, 12): oneDNN and ATen pick their kernels by the instruction
set they find, and oneDNN splits its reductions by thread, so the same code, seed and data give
other last bits on another CPU, another ISA cap or another thread count, and other timings
anywhere. `describe` records what decides that: the CPU model, the ISA torch dispatches to, the
`ONEDNN_MAX_CPU_ISA` cap if one is set, the torch threads the run used, the torch build, Python,
the platform, and the GPU when the device is CUDA. `gpu_note` says, from the devices the
published records name, whether any figure on the site was measured on a GPU (the site hook
places it: the decision is made here, not in the hook).

No torch at import: the site hook imports this module for `gpu_note`; `describe` imports torch
when called. Nothing here writes a file.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
ISA_ENV = "ONEDNN_MAX_CPU_ISA"  # oneDNN's cap on the ISA it may use (oneDNN docs, "CPU dispatcher control")
KEYS = ("cpu", "cores", "isa", ISA_ENV.lower(), "threads", "device", "gpu", "torch", "torch_git",
        "torch_cuda", "torch_debug", "python", "platform")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's marketing name ("AMD EPYC 7B13") from /proc/cpuinfo's first "model name" line on
    Linux; platform.processor() elsewhere, or the architecture when even that is empty."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:  # not Linux, or /proc not mounted: the fallback below
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe(device=None, threads=None) -> dict:
    """The machine and torch build behind a measurement, as a JSON-ready dict with the keys KEYS.

    Args:
        device: the torch.device (or its name) the measurement ran on; None: the CPU.
        threads: the torch intra-op thread count the measurement used (an int, or the list of
            counts a benchmark compared); None: torch.get_num_threads() now. Pass what the run
            used: a caller that changes the count for a run must call this inside that setting.
    Returns:
        {"cpu": model name, "cores": usable cores, "isa": torch.backends.cpu.get_cpu_capability()
         ("AVX2", "AVX512", "DEFAULT", ...), "onednn_max_cpu_isa": the env setting or None,
         "threads", "device": e.g. "cpu" or "cuda:0", "gpu": the CUDA device's name or None,
         "torch": version, "torch_git": the commit torch was built from, "torch_cuda": the CUDA
         version torch was built with (None: a CPU build), "torch_debug": a debug build,
         "python": version, "platform": platform.platform()}.
    """
    import torch

    from pipeline.parallel import cores
    device = torch.device(device if device is not None else "cpu")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cpu": cpu_model(), "cores": cores(),
            "isa": torch.backends.cpu.get_cpu_capability(),
            ISA_ENV.lower(): os.environ.get(ISA_ENV),
            "threads": torch.get_num_threads() if threads is None else threads,
            "device": str(device), "gpu": gpu,
            "torch": torch.__version__, "torch_git": torch.version.git_version,
            "torch_cuda": torch.version.cuda, "torch_debug": bool(torch.version.debug),
            "python": platform.python_version(),
            "platform": platform.platform()}


# One step below the best instruction set torch finds, as oneDNN names its caps: the kernels (and
# the float sums) another CPU would use. On AVX-512 machines AVX2 differs from the default, and on
# AVX2 machines SSE4.1 does (both measured: parameters differ after 5 Adam steps).
LOWER_ISA = {"AVX512": "AVX2", "AVX512_BF16": "AVX2", "AVX512_VNNI": "AVX2", "AVX2": "SSE41",
             "AVX2_VNNI": "SSE41", "AVX": "SSE41"}


def lower_isa(capability: str) -> str | None:
    """The ONEDNN_MAX_CPU_ISA value below `capability` (torch.backends.cpu.get_cpu_capability()),
    or None where there is none to go to (DEFAULT, or a non-x86 CPU)."""
    return LOWER_ISA.get(capability.upper())


UNKNOWN = "unknown"   # runs written before the machine was recorded
DIFFERS = "differs"   # runs whose records disagree: each run's metrics.json holds its own


def recorded(records: list[dict]) -> dict | str:
    """The machine a set of runs trained on, from their metrics.json dicts: the `machine` they
    all share; UNKNOWN when none holds one; DIFFERS when they disagree or only some hold one."""
    found = [r.get("machine") for r in records]
    known = [m for m in found if isinstance(m, dict)]
    if not known:
        return UNKNOWN
    if len(known) == len(found) and all(m == known[0] for m in known):
        return known[0]
    return DIFFERS


def runs_on_gpu(devices: dict[str, list[str]]) -> dict[str, list[str]]:
    """Of {record: the device descriptions it holds}, the records with a CUDA device and which.
    A description is train.device_description's ("cpu (1 threads)", "cuda (NVIDIA H100)")."""
    out = {}
    for record, found in devices.items():
        cuda = [str(d) for d in found if str(d).startswith("cuda")]
        if cuda:
            out[record] = sorted(set(cuda))
    return out


def gpu_note(devices: dict[str, list[str]]) -> str:
    """One sentence for the site: whether any published figure was measured on a GPU.

    devices: {what a reader calls the record ("the reference runs"): the device descriptions it
    holds}. The sentence names the records on a GPU, or says that none is, so no GPU figure has
    been measured; it may hold code spans (`...`) and nothing else of Markdown.
    """
    gpu = runs_on_gpu(devices)
    if not gpu:
        where = ", ".join(devices) if devices else "no record"
        return (f"No GPU figure has been measured: every published run ({where}) ran on the CPU. "
                "The CUDA path (`--device cuda`) is tested on the CPU only, for device placement, "
                "seeding and the deterministic cuDNN settings (`tests/test_train.py`).")
    named = "; ".join(f"{record} on {', '.join(found)}" for record, found in gpu.items())
    cpu = [record for record in devices if record not in gpu]
    rest = f" The others ({', '.join(cpu)}) ran on the CPU." if cpu else ""
    return (f"Measured on a GPU: {named}. GPU figures depend on the GPU model, CUDA and cuDNN "
            f"versions, and are not comparable with the CPU figures.{rest}")
