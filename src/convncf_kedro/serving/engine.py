"""The one scoring engine of batch scoring and full-ranking evaluation: the exported graph under ONNX Runtime,
users split into partitions, each ranked against every unseen item with a running top-K.

Partitions run in this process (``cluster=None``), on a ``LocalCluster`` of N single-threaded worker
processes started and closed here (``"local:N"``), on dask-cuda's ``LocalCUDACluster`` (``"local-cuda"``:
one worker per GPU) or on an existing Dask cluster (a scheduler address, ``"tcp://host:8786"``). The graph
and the seen matrix are broadcast to the workers once; each worker process builds its ONNX Runtime session
once and reuses it for every partition. A worker that dies has its partitions re-run by Dask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import scipy.sparse as sp

from convncf_kedro.ranking.full import top_k_of_shortlist, top_k_unseen

from .session import create_session, onnx_block_scorer, onnx_pair_scorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankSettings:
    """How each partition is ranked (the same wherever it runs)."""

    k: int
    batch_pairs: int = 256  # pairs per session.run
    chunk_users: int = 16  # users × items scored per block: bounds memory
    chunk_items: int = 2048
    device: str = "auto"  # auto | cpu | cuda, for ONNX Runtime
    threads: int | None = None  # ONNX Runtime intra-op threads; None: its default in-process, 1 per Dask worker
    log_every_seconds: float = 30.0
    shortlist: int | None = None  # two stages: the retrieval graph shortlists this many unseen items per user


@dataclass(frozen=True)
class RankedPartition:
    index: int  # position of the partition among all of them
    users: np.ndarray  # (U,) user indices
    top_items: np.ndarray  # (U, k) item indices, best first (-1 where fewer unseen items)
    top_scores: np.ndarray  # (U, k) float32
    provider: str  # the ONNX Runtime provider that ran it


_sessions: dict[tuple[str, str, int | None], ort.InferenceSession] = {}


def session_for(graph: bytes, device: str, threads: int | None, role: str = "ranking") -> ort.InferenceSession:
    """This process's session for ``graph``: built once, reused by every partition (one graph kept)."""
    key = (hashlib.sha256(graph).hexdigest(), device, threads)
    if key not in _sessions:
        if len(_sessions) >= 2:  # a ranking and a retrieval graph at most
            _sessions.clear()
        _sessions[key] = create_session(graph, device, threads, role=role)
    return _sessions[key]


def rank_partition(
    graph: bytes, seen: sp.csr_matrix, users: np.ndarray, settings: RankSettings, index: int = 0,
    ties_last: sp.csr_matrix | None = None, retrieval: bytes | None = None,
) -> RankedPartition:
    """Top-k unseen items of ``users`` (a task: runs in-process or on a Dask worker): every unseen item scored, or,
    with ``settings.shortlist``, only the shortlist the ``retrieval`` graph picks."""
    session = session_for(graph, settings.device, settings.threads)
    if settings.shortlist:
        if retrieval is None:
            raise ValueError("a two-stage ranking (shortlist) needs the retrieval graph")
        retriever = session_for(retrieval, settings.device, settings.threads, role="retrieval")
        top_items, top_scores = top_k_of_shortlist(
            onnx_pair_scorer(session, settings.batch_pairs),
            lambda block: retriever.run(["scores"], {"user": block.astype(np.int64)})[0], users, seen, settings.k,
            settings.shortlist, settings.chunk_users, label=f"partition {index}", ties_last=ties_last,
        )
        return RankedPartition(index, users, top_items, top_scores, session.get_providers()[0])
    top_items, top_scores = top_k_unseen(
        onnx_block_scorer(session, settings.batch_pairs), users, seen, settings.k, settings.chunk_users,
        settings.chunk_items, settings.log_every_seconds, label=f"partition {index}", ties_last=ties_last,
    )
    return RankedPartition(index, users, top_items, top_scores, session.get_providers()[0])


def partitions_of(users: np.ndarray, partition_users: int) -> list[np.ndarray]:
    """``users`` in consecutive partitions of at most ``partition_users`` (none for no users)."""
    return np.array_split(users, math.ceil(len(users) / partition_users)) if len(users) else []


def rank_users(
    graph: bytes, seen: sp.csr_matrix, users: np.ndarray, settings: RankSettings, partition_users: int,
    cluster: str | None = None, ties_last: sp.csr_matrix | None = None, label: str = "ranking",
    retrieval: bytes | None = None,
) -> Iterator[RankedPartition]:
    """Every partition of ``users`` ranked, yielded as each completes (in any order on a cluster)."""
    parts = partitions_of(np.asarray(users, dtype=np.int64), partition_users)
    per_user = min(settings.shortlist or seen.shape[1], seen.shape[1])  # pairs the ranking graph scores per user
    progress = _Progress(label, len(parts), len(users) * per_user, settings.log_every_seconds)
    if cluster is None:
        for index, part in enumerate(parts):
            ranked = rank_partition(graph, seen, part, settings, index, ties_last, retrieval)
            progress.done(len(part) * per_user)
            yield ranked
        return
    with dask_client(cluster) as client:
        from distributed import as_completed

        on_worker = settings if settings.threads else dataclasses.replace(settings, threads=1)
        shared = client.scatter([graph, seen, ties_last, retrieval], broadcast=True, hash=False)  # once per worker
        futures = [client.submit(rank_partition, *shared[:2], part, on_worker, index, *shared[2:], pure=False)
                   for index, part in enumerate(parts)]
        for future in as_completed(futures):
            ranked = future.result()
            progress.done(len(ranked.users) * per_user)
            future.release()
            yield ranked


CONNECT_SECONDS = 10  # how long to try a scheduler address before saying it cannot be reached


class ClusterUnreachableError(ConnectionError):
    """The configured Dask scheduler does not answer."""


@contextlib.contextmanager
def dask_client(cluster: str) -> Iterator:
    """A Dask client for ``cluster``: ``local:N``, ``local-cuda`` (started and closed here) or a scheduler address."""
    from distributed import Client, LocalCluster

    if cluster.startswith("local:"):
        workers = int(cluster.removeprefix("local:"))
        started = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    elif cluster == "local-cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise RuntimeError("cluster 'local-cuda' needs dask-cuda: pip install dask-cuda (GPU machines)") from exc
        started = LocalCUDACluster(threads_per_worker=1, dashboard_address=None)
    else:
        started = None
    with contextlib.ExitStack() as stack:
        if started is not None:
            stack.enter_context(started)
        try:
            client = stack.enter_context(Client(started) if started is not None else
                                         Client(cluster, timeout=CONNECT_SECONDS))
        except (OSError, TimeoutError) as exc:  # one line, not Dask's retries and tracebacks
            raise ClusterUnreachableError(
                f"cannot reach the Dask scheduler at {cluster} within {CONNECT_SECONDS} s ({type(exc).__name__}): "
                "start it (dask scheduler), or set the cluster to local:N or null (this process)") from None
        logger.info("Dask: %d workers at %s", len(client.scheduler_info()["workers"]), client.scheduler.address)
        yield client


class _Progress:
    """A log line with rate and ETA at most every ``every`` seconds."""

    def __init__(self, label: str, parts: int, pairs: int, every: float):
        self.label, self.parts, self.pairs, self.every = label, parts, pairs, every
        self.started = self.last = time.perf_counter()
        self.done_parts = self.done_pairs = 0

    def done(self, pairs: int) -> None:
        self.done_parts += 1
        self.done_pairs += pairs
        now = time.perf_counter()
        if now - self.last >= self.every or self.done_parts == self.parts:
            rate = self.done_pairs / max(now - self.started, 1e-9)
            eta = (self.pairs - self.done_pairs) / rate if rate else 0.0
            logger.info("%s: %d/%d partitions, %s pairs/s, ETA %.0f s", self.label, self.done_parts, self.parts,
                        f"{rate:,.0f}", eta)
            self.last = now
