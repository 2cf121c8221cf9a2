"""The offline install that makes an environment image, as run inside its container.

The container gets the lock's wheels and a hash-pinned requirements file under ``/snap/``
(no network), runs ``INSTALL_SCRIPT`` and is committed as one layer. pip installs with
``--no-index --no-deps --require-hashes`` and ``--ignore-installed`` (a copy the base ships
of the same version is installed over, not trusted); the wheels are deleted in the same
run, so the layer holds the installed packages and nothing else.

Bytecode: pip compiles each installed ``.py`` file one after the other, which was most
of an install of a big lock (11 of 18 s for numpy, pandas and 43 more). Here pip installs
with ``--no-compile`` and ``COMPILE_SCRIPT`` compiles exactly the ``.py`` files of the
installed distributions (their RECORD), with every core: the same ``.pyc`` files pip
would write (``compileall.compile_file``, timestamp-checked, failures ignored as pip
ignores them), in parallel. The interpreter's own bytecode is not written (it would land
in the layer).
"""

from __future__ import annotations

COMPILE_SCRIPT = r"""
import compileall, multiprocessing, re
import importlib.metadata as md
from concurrent.futures import ProcessPoolExecutor

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

with open("/snap/requirements.txt") as f:
    wanted = {norm(line.split("==", 1)[0]) for line in f if line.strip()}
files = sorted({
    str(d.locate_file(p))
    for d in md.distributions()
    if norm(d.metadata["Name"] or "") in wanted
    for p in (d.files or ())
    if p.suffix == ".py"
})

def one(path):
    return compileall.compile_file(path, quiet=2)

with ProcessPoolExecutor(mp_context=multiprocessing.get_context("fork")) as pool:
    done = sum(map(bool, pool.map(one, files, chunksize=64)))
print(f"compiled {done} of {len(files)} installed .py files")
"""

INSTALL_SCRIPT = (
    "export PIP_BREAK_SYSTEM_PACKAGES=1 PYTHONDONTWRITEBYTECODE=1 && "
    "python3 -m pip install --no-index --no-deps --require-hashes --ignore-installed "
    "--no-compile --no-cache-dir --disable-pip-version-check --no-warn-script-location "
    "--find-links /snap/wheels -r /snap/requirements.txt && "
    "python3 -c '" + COMPILE_SCRIPT.replace("'", "'\"'\"'") + "' && rm -rf /snap"
)
