"""Packaging: the installed nnfs_fast is what the wheels promise.

* the cibuildwheel configuration builds exactly the intended wheels;
* on x86-64 only the avx2/avx512 dense modules and the functions compiled for AVX2 by name
  (``*_avx2``, chosen at run time: kernels/targets.h) contain AVX instructions (objdump);
* the only run-time dependency is NumPy;
* with NNFS_FAST_WHEEL_TEST=1 (cibuildwheel's test step, tools/check_wheel.sh): the installed
  package is a shipped wheel, so OpenMP is on and its runtime is bundled beside the package.

Forcing each instruction-set level with NNFS_FAST_ISA against the reference: test_dispatch.py.
"""
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import nnfs_fast
from nnfs_fast.runtime import cpu as _cpu
from nnfs_fast.runtime import dispatch as _dispatch

ROOT = Path(__file__).resolve().parents[2]
PKG_DIR = Path(nnfs_fast.__file__).resolve().parent
WHEEL_TEST = os.environ.get("NNFS_FAST_WHEEL_TEST") == "1"

# The wheels of pyproject.toml [tool.cibuildwheel]: CPython x platform (x arch).
PYTHONS = ("cp310", "cp311", "cp312", "cp313", "cp314")
PLATFORM_TAGS = {
    "linux": ("manylinux_x86_64", "manylinux_aarch64", "musllinux_x86_64"),
    "macos": ("macosx_x86_64", "macosx_arm64"),
    "windows": ("win_amd64",),
}


@pytest.mark.parametrize("platform_name", sorted(PLATFORM_TAGS))
def test_cibuildwheel_builds_the_intended_wheels(platform_name):
    if importlib.util.find_spec("cibuildwheel") is None:
        pytest.skip("cibuildwheel is not installed (pip install cibuildwheel, Python >= 3.11)")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip(f"no source tree with pyproject.toml at {ROOT}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    result = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
         "--platform", platform_name, str(ROOT)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = sorted(f"{py}-{tag}" for py in PYTHONS for tag in PLATFORM_TAGS[platform_name])
    assert sorted(result.stdout.split()) == expected


def _extension_modules():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p for p in PKG_DIR.rglob("*") if p.name.endswith(suffixes))


VMX = {"verr", "verw", "vmcall", "vmlaunch", "vmresume", "vmxon", "vmxoff", "vmread",
       "vmwrite", "vmptrld", "vmptrst", "vmclear", "vmfunc"}  # v-ops that are not AVX
INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)(.*)$", re.M)


FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$", re.M)
AVX2_FUNCTION = "_avx2"     # in the names of functions compiled for AVX2 (kernels/targets.h)


def _avx_usage(path, skip=lambda function: False):
    """(VEX/EVEX-encoded instructions, those using ymm, those using zmm) in a binary, outside
    the functions whose names ``skip`` accepts."""
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)],
                             capture_output=True, text=True, check=True).stdout
    avx = ymm = zmm = 0
    for block in re.split(r"(?m)^(?=[0-9a-f]+ <)", listing):
        header = FUNCTION.match(block)
        if header and skip(header.group(1)):
            continue
        for mnemonic, operands in INSTRUCTION.findall(block):
            avx += mnemonic.startswith("v") and mnemonic not in VMX
            ymm += "ymm" in operands
            zmm += "zmm" in operands
    return avx, ymm, zmm


needs_x86_objdump = pytest.mark.skipif(
    "avx2" not in _dispatch.built_levels() or shutil.which("objdump") is None
    or sys.platform not in ("linux", "darwin"),
    reason="needs an x86-64 Linux or macOS build (with avx2/avx512 modules) and objdump")


@needs_x86_objdump
@pytest.mark.parametrize("module", [str(p.relative_to(PKG_DIR)) for p in _extension_modules()
                                    if not p.name.startswith(("dense_avx2", "dense_avx512"))])
def test_modules_outside_the_avx_levels_contain_no_avx(module):
    """Importing nnfs_fast runs these on any x86-64 CPU: one AVX instruction would crash it.
    Functions compiled for AVX2 by name run only where the CPU has it (the test below)."""
    assert _avx_usage(PKG_DIR / module, skip=lambda f: AVX2_FUNCTION in f) == (0, 0, 0)


@needs_x86_objdump
@pytest.mark.parametrize("name", ["dropout", "optimizers"])
def test_loops_compiled_for_two_targets_have_an_avx2_build(name):
    """kernels/targets.h compiles these modules' loops for AVX2 too (gcc and clang on x86-64);
    the module runs them only where runtime/cpu.pyx finds AVX2 (runtime/dispatch.py)."""
    module = importlib.import_module(f"nnfs_fast.kernels.{name}")
    avx, ymm, zmm = _avx_usage(Path(module.__file__), skip=lambda f: AVX2_FUNCTION not in f)
    assert avx > 0 and ymm > 0 and zmm == 0
    assert ("avx2" in module.targets()) == ("avx2" in _cpu.supported_levels())


@needs_x86_objdump
def test_avx_levels_use_their_registers():
    modules = {p.name.split(".")[0]: p for p in _extension_modules()}
    avx, ymm, zmm = _avx_usage(modules["dense_avx2"])
    assert avx > 0 and ymm > 0 and zmm == 0
    avx, ymm, zmm = _avx_usage(modules["dense_avx512"])
    assert avx > 0 and zmm > 0


def test_numpy_is_the_only_runtime_dependency():
    try:
        declared = importlib.metadata.requires("nnfs_fast") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("nnfs_fast is imported from a source tree, not installed")
    requirements = [Requirement(r) for r in declared]
    runtime = [r for r in requirements if r.marker is None or "extra" not in str(r.marker)]
    assert [r.name for r in runtime] == ["numpy"]


# Where each repair tool puts the OpenMP runtime it copies into the wheel.
BUNDLED_OPENMP = {
    "linux": ("nnfs_fast.libs", "libgomp*"),      # auditwheel
    "darwin": ("nnfs_fast/.dylibs", "libomp*"),   # delocate
    "win32": ("nnfs_fast.libs", "vcomp140*"),     # delvewheel
}


@pytest.mark.skipif(not WHEEL_TEST, reason="checks a shipped wheel (NNFS_FAST_WHEEL_TEST=1)")
def test_wheel_runs_on_its_bundled_openmp_runtime():
    assert nnfs_fast.openmp_enabled()
    folder, pattern = BUNDLED_OPENMP[sys.platform]
    bundled = sorted((PKG_DIR.parent / folder).glob(pattern))
    assert bundled, f"no {pattern} in {PKG_DIR.parent / folder}"
