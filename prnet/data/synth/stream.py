"""On-the-fly synthetic data: an endless, seeded stream rendered inside DataLoader workers (nothing on disk).

    stream = SynthStream(seed=0)
    loader = torch.utils.data.DataLoader(stream, batch_size=16, num_workers=8, collate_fn=my_collate)

Sample indices are interleaved over the workers (worker w of W renders start + w, start + w + W, ...), so the
workers never render the same sample, and each sample is the one `prnet data synth --seed S` would write at
that index (same generator, same (seed, index)). To resume a run after consuming k samples, pass start=k.
Yields prnet.data.format.Sample (numpy arrays); `transform` (e.g. the trainer's augmentation + tensor
conversion) is applied inside the worker.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from prnet.data.format import Sample
from prnet.data.synth.generate import limit_blas_threads
from prnet.data.synth.render import SynthConfig, load_assets, render_sample


class SynthStream(torch.utils.data.IterableDataset):
    def __init__(self, seed: int = 0, config: SynthConfig = SynthConfig(), start: int = 0,
                 transform: Callable[[Sample], Any] | None = None, limit: int | None = None):
        super().__init__()
        self.seed, self.config, self.start, self.transform, self.limit = int(seed), config, int(start), transform, limit

    @property
    def layout(self):
        return load_assets().layout

    def indices(self, worker_id: int = 0, num_workers: int = 1) -> Iterator[int]:
        index = self.start + worker_id
        while self.limit is None or index < self.start + self.limit:
            yield index
            index += num_workers

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            limit_blas_threads()  # inside a worker process only: leave the caller's process alone
        assets = load_assets()
        for index in self.indices(worker_id, num_workers):
            sample = render_sample(index, self.seed, self.config, assets)
            yield self.transform(sample) if self.transform is not None else sample
