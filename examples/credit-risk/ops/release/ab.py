"""A/B mode: two releases serve at once, each applicant always meets the same one.

nginx (deploy/ab/nginx.conf.template) assigns an applicant to arm a or b by a hash of the
X-Applicant-ID header (`split_clients`, MurmurHash2) and tags each answer with X-Arm. The
assignment is a pure function of the id: `arm()` computes the very same function in Python,
so an analysis can assign its own rows (or check nginx's log) without asking nginx.

Unlike a canary, an A/B test runs for weeks and is judged on outcomes (did the loan get
repaid?), not on error rates; notebooks/ab-testing.ipynb analyses one and sizes it.
"""

from pathlib import Path

from ops.nginx import LoopbackProxy, Nginx, render
from ops.processes import EXAMPLE_DIR

TEMPLATE = EXAMPLE_DIR / "deploy" / "ab" / "nginx.conf.template"
HEADER = "X-Applicant-ID"
M = 0x5BD1E995
MASK = 0xFFFFFFFF


def murmur_hash2(key: bytes) -> int:
    """nginx's ngx_murmur_hash2 (MurmurHash2, seed 0, little-endian blocks), 32 bits."""
    h = len(key) & MASK
    blocks = len(key) // 4
    for i in range(blocks):
        k = int.from_bytes(key[4 * i:4 * i + 4], "little")
        k = (k * M) & MASK
        k ^= k >> 24
        k = (k * M) & MASK
        h = ((h * M) & MASK) ^ k
    tail = key[4 * blocks:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    h ^= h >> 15
    return h


def arm(applicant_id: str, share_a: float = 50) -> str:
    """The arm nginx's split_clients gives this applicant: "a" for the first `share_a`
    percent of the hash range (in hundredths of a percent, as nginx reads it), else "b"."""
    if not applicant_id:
        return "unassigned"
    boundary = round(share_a * 100) * MASK // 10_000
    return "a" if murmur_hash2(applicant_id.encode()) < boundary else "b"


def render_config(run_dir: Path, port: int, arm_a: str, arm_b: str,
                  share_a: float = 50) -> Path:
    """Write run_dir/nginx.conf: arms a and b (host:port each), `share_a` percent in a."""
    return render(TEMPLATE, run_dir / "nginx.conf", RUN_DIR=str(run_dir), PORT=str(port),
                  ARM_A=arm_a, ARM_B=arm_b, SHARE_A=f"{share_a:g}%")


class ABProxy(LoopbackProxy):
    """nginx on a loopback port splitting applicants between two releases."""

    def __init__(self, arm_a: str, arm_b: str, share_a: float = 50,
                 run_dir: Path | None = None, port: int | None = None) -> None:
        super().__init__("credit-risk-ab-", run_dir, port)
        conf = render_config(self.run_dir, self.port, arm_a, arm_b, share_a)
        self.nginx = Nginx(conf, self.run_dir, self.port)
