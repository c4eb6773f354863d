"""Group concurrent single-application requests into one model call.

The model costs about the same for 1 row as for 64, so under load the server should call it
once for everything that is waiting. This batcher never waits for a batch to fill: when the
model is idle a request is scored at once (a batch of 1, no added latency); while the model
is busy, new requests queue, and the next call takes all of them, up to `max_batch_size`.
The batch size so follows the load by itself, and nothing learned carries over from one
burst to the next.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class MicroBatcher:
    def __init__(self, predict: Callable[[list], list], max_batch_size: int,
                 on_batch: Callable[[int], None] = lambda size: None) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.on_batch = on_batch
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.drainer: asyncio.Task | None = None
        # One thread runs the model, so batches never compete with each other for the GIL.
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def submit(self, item):
        """The prediction for `item`, computed in one call with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.drainer is None or self.drainer.done():
            self.drainer = asyncio.create_task(self.drain())
        return await future

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            batch = self.waiting[:self.max_batch_size]
            del self.waiting[:self.max_batch_size]
            self.on_batch(len(batch))
            try:
                results = await loop.run_in_executor(
                    self.model_thread, self.predict, [item for item, _ in batch])
            except Exception as error:  # every caller in the batch gets the error
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller gave up (timeout or disconnect)
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
