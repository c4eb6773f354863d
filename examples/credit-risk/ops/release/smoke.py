"""Stage 4, smoke test: the image starts, gets ready and gives the known answer."""

import httpx

from credit_risk import scoring
from credit_risk.schema import EXAMPLE_INPUT
from ops import podman
from ops.release.build import Release
from ops.release.environment import Production
from ops.release.stages import StageFailed


def expected_answer(model_tag: str) -> dict:
    """What the model says in this process about the example input."""
    answer = scoring.score(scoring.load(model_tag), [EXAMPLE_INPUT])[0]
    return answer.model_dump(exclude={"request_id"})


def smoke_test(production: Production, release: Release) -> podman.Container:
    """Start the image; it must be ready and give the known answer. Returns the running
    container (the canary uses it); removes it on failure."""
    container = production.launch(release, "candidate")
    try:
        response = httpx.post(f"{container.url}/score", json=EXAMPLE_INPUT.model_dump(),
                              timeout=10)
        if response.status_code != 200:
            raise StageFailed(f"smoke test: /score answered {response.status_code}: "
                              f"{response.text[:300]}")
        expected = expected_answer(release.model)
        answer = {key: response.json().get(key) for key in expected}
        if answer != expected:
            raise StageFailed(f"smoke test: the container answered {answer}, "
                              f"the model in process {expected}")
    except BaseException:
        container.remove()
        raise
    return container
