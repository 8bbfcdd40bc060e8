"""The script of the core-engine issue, run as written in a fresh interpreter."""
import subprocess
import sys
import textwrap

from pyfront.testing import subprocess_env

SCRIPT = textwrap.dedent("""
    import numpy as np, pyfront as pf
    x = pf.tensor(np.random.rand(8, 4).astype("float32"), requires_grad=True)
    w = pf.tensor(np.random.rand(4, 3).astype("float32"), requires_grad=True)
    loss = pf.relu(x @ w).sum()
    loss.backward()
    assert x.grad.shape == (8, 4) and w.grad.shape == (4, 3)

    model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
    opt = pf.optim.Adam(model.parameters(), lr=1e-3)
    xb = pf.tensor(np.random.rand(16, 64).astype("float32")); yb = pf.tensor(np.arange(16) % 10)
    for _ in range(3):
        opt.zero_grad(); l = pf.losses.cross_entropy(model(xb), yb); l.backward(); opt.step()
    fast = model.hybridize()            # or pf.jit(model); same numbers as eager
    assert np.allclose(fast(xb).numpy(), model(xb).numpy(), atol=1e-5)
    pf.save(model, "model.pf"); again = pf.load("model.pf")
    assert np.array_equal(again(xb).numpy(), model(xb).numpy())
    print("issue script OK")
""")


def test_issue_script_runs_as_written(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "issue script OK" in proc.stdout
    assert (tmp_path / "model.pf").exists()
