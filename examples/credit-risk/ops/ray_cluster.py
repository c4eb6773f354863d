"""A Ray cluster of several nodes on this machine, every process on loopback: what the tests,
the notebook and `make bench` run the Ray jobs on.

    with local_cluster(workers=2):
        ray_batch.run(...)       # this process is connected to the cluster

On real machines you start the nodes with `ray start` instead (see the batch chapter); the
jobs themselves do not change.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Ray replaces 127.0.0.1 with the machine's address everywhere unless "cluster mode" is off,
# and reads the switch once, when it is first imported. A worker node started with
# node_ip_address=127.0.0.1 still announces the machine's address otherwise.
LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Each node's raylet waits this long for its dashboard agent, a Python process that can
    # take 15-30 s to import on a busy 2-core machine (Ray's default gives up after 15 s).
    "RAY_agent_register_timeout_ms": "120000",
    # Start worker processes when a task or actor needs one, not ahead for every CPU: each is
    # a Python process that imports Ray, and on a small machine the spares crowd out the work.
    "RAY_enable_worker_prestart": "0",
    "RAY_prestart_worker_first_driver": "0",
    # Serve's replicas log every request; keep those lines in the nodes' log files instead of
    # streaming them to the driver's terminal.
    "RAY_SERVE_LOG_TO_STDERR": "0",
    # A worker that has not registered after this long is killed and replaced (default 60 s).
    "RAY_worker_register_timeout_seconds": "180",
}


@contextmanager
def local_cluster(workers: int = 2, cpus_per_worker: int = 1, head_cpus: int = 1,
                  object_store_mib: int = 200) -> Iterator[str]:
    """Start a head and `workers` worker nodes, each its own raylet, and connect this process
    to them; yield the cluster's address; disconnect and stop every node on exit."""
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        raise RuntimeError("ray was imported before local_cluster(): it would bind the "
                           "machine's address instead of 127.0.0.1")
    # Short: Ray's unix socket paths must fit in 107 bytes, and pytest's tmp paths are long.
    state = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    (state / "ray").mkdir()
    # The nodes' worker processes inherit this environment, so the driver connects without
    # a runtime environment: with one, every worker start runs a setup process first, which
    # on a small machine is slow enough for Ray to time the worker out and start another.
    from ops.ray_batch import worker_env

    wanted = worker_env()
    wanted["PYTHONPATH"] = os.pathsep.join(filter(None, [wanted["PYTHONPATH"],
                                                         os.environ.get("PYTHONPATH")]))
    os.environ.update(LOCAL_ENV, **wanted, RAY_TMPDIR=str(state))
    import ray
    from ray.cluster_utils import Cluster

    node = {"node_ip_address": "127.0.0.1", "object_store_memory": object_store_mib * 2**20}
    cluster = Cluster()  # nothing started yet; the first node added is the head
    try:
        cluster.add_node(**node, num_cpus=head_cpus, temp_dir=str(state / "ray"),
                         include_dashboard=False)
        for _ in range(workers):
            cluster.add_node(**node, num_cpus=cpus_per_worker)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(state, ignore_errors=True)
