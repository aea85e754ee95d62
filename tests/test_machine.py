"""The machine record (pipeline/machine.py): what describe() holds, where each value comes from,
and the decisions the site places (the machine a set of runs shares, whether any run used a GPU)."""
import json

import pytest
import torch

from pipeline import machine as M


def test_describe_holds_every_key_as_json():
    m = M.describe()
    assert tuple(m) == M.KEYS
    assert json.loads(json.dumps(m)) == m
    assert m["device"] == "cpu" and m["gpu"] is None and m["torch"] == torch.__version__
    assert m["torch_git"] == torch.version.git_version and m["torch_cuda"] == torch.version.cuda
    assert m["threads"] == torch.get_num_threads() and m["cores"] >= 1 and m["cpu"]


def test_describe_records_the_isa_torch_dispatches_to(monkeypatch):
    assert M.describe()["isa"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert M.describe()["isa"] == "AVX512"


def test_describe_records_the_onednn_isa_cap_when_set(monkeypatch):
    monkeypatch.delenv(M.ISA_ENV, raising=False)
    assert M.describe()["onednn_max_cpu_isa"] is None
    monkeypatch.setenv(M.ISA_ENV, "AVX2")
    assert M.describe()["onednn_max_cpu_isa"] == "AVX2"


def test_describe_records_the_threads_it_is_given():
    assert M.describe(threads=1)["threads"] == 1
    assert M.describe(threads=[1, 2])["threads"] == [1, 2]  # the counts a benchmark compared


def test_describe_names_the_gpu_of_a_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"NVIDIA Fake ({device})")
    m = M.describe(torch.device("cuda", 0))
    assert m["device"] == "cuda:0" and m["gpu"] == "NVIDIA Fake (cuda:0)"
    assert M.describe("cuda")["device"] == "cuda"


def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n")
    assert M.cpu_model(info) == "AMD EPYC 7B13 64-Core Processor"
    monkeypatch.setattr(M.platform, "processor", lambda: "arm")
    assert M.cpu_model(tmp_path / "absent") == "arm"                         # not Linux
    info.write_text("processor\t: 0\nmodel name\t: \n")                      # some VMs leave it empty
    assert M.cpu_model(info) == "arm"


def test_recorded_is_the_machine_the_runs_share():
    a, b = {"cpu": "A", "threads": 1}, {"cpu": "B", "threads": 1}
    assert M.recorded([{"machine": a}, {"machine": dict(a)}]) == a
    assert M.recorded([{"variant": "x"}, {"variant": "y"}]) == M.UNKNOWN     # files older than the record
    assert M.recorded([{"machine": a}, {"machine": b}]) == M.DIFFERS
    assert M.recorded([{"machine": a}, {}]) == M.DIFFERS


@pytest.mark.parametrize("devices, gpu", [
    ({"runs": ["cpu (1 threads)"], "bench": ["cpu (2 threads)"]}, {}),
    ({"runs": ["cpu (1 threads)", "cuda (NVIDIA H100)"], "bench": ["mps"]}, {"runs": ["cuda (NVIDIA H100)"]}),
    ({}, {}),
])
def test_runs_on_gpu_are_those_with_a_cuda_device(devices, gpu):
    assert M.runs_on_gpu(devices) == gpu


def test_gpu_note_says_unmeasured_unless_a_run_was_on_a_gpu():
    cpu = M.gpu_note({"the reference runs": ["cpu (1 threads)"], "`invoke bench`": ["cpu (1 threads)"]})
    assert cpu.startswith("No GPU figure has been measured: every published run (the reference runs, "
                          "`invoke bench`) ran on the CPU.")
    gpu = M.gpu_note({"the reference runs": ["cuda (NVIDIA H100)"], "`invoke bench`": ["cpu (1 threads)"]})
    assert gpu.startswith("Measured on a GPU: the reference runs on cuda (NVIDIA H100).")
    assert gpu.endswith("The others (`invoke bench`) ran on the CPU.")


def test_lower_isa_is_one_step_below_the_best():
    from pipeline.machine import lower_isa
    assert lower_isa("AVX512") == "AVX2" and lower_isa("AVX2") == "SSE41" and lower_isa("avx2") == "SSE41"
    assert lower_isa("DEFAULT") is None and lower_isa("NEON") is None
