"""A prefix cache of key/value tensors keyed on token ids: a radix tree, bounded, LRU-evicted.

Tree search asks the model to continue the same prefixes again and again: the k children of
a node share the node's path, every rollout through a path re-reads it, the n samples of a
prompt share the prompt. Keeping the key/value cache of what was computed and finding the
longest cached prefix of a new request (SGLang's RadixAttention idea) turns those re-reads
into a copy. Written here rather than taken from a library: transformers has no cross-call
prefix cache, and vLLM's lives inside its own engine.

Each edge of the tree holds a run of token ids and the key/value tensors of those positions,
one (keys, values) pair per layer, each `(kv_heads, len, head_dim)`. A lookup walks the ids;
an insert splits an edge where a new sequence leaves it. Memory is counted in bytes; past the
budget, the least recently used leaves are dropped first (a leaf's ancestors are shared by
more sequences and stay longer).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (keys, values), each (heads, len, dim)


@dataclass(eq=False)
class _Edge:
    ids: tuple[int, ...]
    kv: KV
    parent: _Edge | None
    children: dict[int, _Edge] = field(default_factory=dict)
    used: int = 0  # the clock of the last lookup or insert through it

    @property
    def nbytes(self) -> int:
        return sum(k.nelement() * k.element_size() * 2 for k, _ in self.kv)


class PrefixCache:
    """`match(ids)` -> (length, kv) of the longest cached prefix; `insert(ids, kv)` stores one."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.root = _Edge((), [], None)
        self.bytes = 0
        self.clock = itertools.count(1)

    def __len__(self) -> int:
        """Cached tokens."""
        return sum(len(e.ids) for e in self._edges())

    def _edges(self) -> list[_Edge]:
        out, todo = [], list(self.root.children.values())
        while todo:
            e = todo.pop()
            out.append(e)
            todo += e.children.values()
        return out

    def _walk(self, ids: Sequence[int]) -> tuple[list[tuple[_Edge, int]], int]:
        """The edges along `ids` with how much of each matched, and the matched length."""
        path, node, at = [], self.root, 0
        while at < len(ids) and (edge := node.children.get(ids[at])) is not None:
            n = 0
            limit = min(len(edge.ids), len(ids) - at)
            while n < limit and edge.ids[n] == ids[at + n]:
                n += 1
            path.append((edge, n))
            at += n
            if n < len(edge.ids):
                break
            node = edge
        return path, at

    def match_length(self, ids: Sequence[int]) -> int:
        return self._walk(ids)[1]

    def match(self, ids: Sequence[int], limit: int | None = None) -> tuple[int, KV | None]:
        """The longest cached prefix of `ids` (at most `limit` tokens) and its key/values, one
        `(heads, length, dim)` pair per layer; (0, None) on a miss."""
        path, length = self._walk(ids)
        if limit is not None:
            length = min(length, limit)
        if not length:
            return 0, None
        now, parts, left = next(self.clock), [], length
        for edge, n in path:
            take = min(n, left)
            if take <= 0:
                break
            edge.used = now
            parts.append([(k[:, :take], v[:, :take]) for k, v in edge.kv])
            left -= take
        kv = [(torch.cat([p[layer][0] for p in parts], 1), torch.cat([p[layer][1] for p in parts], 1))
              if len(parts) > 1 else parts[0][layer] for layer in range(len(parts[0]))]
        return length, kv

    def insert(self, ids: Sequence[int], kv_from: int, kv: KV) -> None:
        """Store `ids`; `kv` holds the key/values of positions `kv_from` onwards (callers pass
        only what `match_length` did not find, so nothing is copied twice)."""
        path, at = self._walk(ids)
        now = next(self.clock)
        node = self.root
        for edge, n in path:
            edge.used = now
            if n < len(edge.ids):
                node = self._split(edge, n)
                break
            node = edge
        if at < len(ids):
            off = at - kv_from
            if off < 0:
                raise ValueError(f"key/values start at {kv_from} but the cache holds only {at} of these ids.")
            edge = _Edge(tuple(ids[at:]), [(k[:, off:].clone(), v[:, off:].clone()) for k, v in kv], node, used=now)
            node.children[edge.ids[0]] = edge
            self.bytes += edge.nbytes
        self._evict()

    def _split(self, edge: _Edge, n: int) -> _Edge:
        """Cut `edge` after n ids; return the new upper part (it then holds `edge` below it)."""
        # copies, not views: a view would keep the whole old tensor alive and the byte count wrong
        upper = _Edge(edge.ids[:n], [(k[:, :n].clone(), v[:, :n].clone()) for k, v in edge.kv], edge.parent,
                      used=edge.used)
        upper.parent.children[upper.ids[0]] = upper
        edge.ids, edge.parent = edge.ids[n:], upper
        edge.kv = [(k[:, n:].clone(), v[:, n:].clone()) for k, v in edge.kv]
        upper.children[edge.ids[0]] = edge
        return upper

    def _evict(self) -> None:
        """Past the budget, drop least recently used leaves down to 90% of it: one sort of the
        leaves then serves the next tenth of the budget's inserts."""
        if self.bytes <= self.max_bytes:
            return
        leaves = sorted((e for e in self._edges() if not e.children), key=lambda e: e.used)
        while self.bytes > 0.9 * self.max_bytes and leaves:
            leaf = leaves.pop(0)
            del leaf.parent.children[leaf.ids[0]]
            self.bytes -= leaf.nbytes
            parent = leaf.parent
            if parent is not self.root and not parent.children:  # it became a leaf: in LRU order
                at = next((i for i, e in enumerate(leaves) if e.used > parent.used), len(leaves))
                leaves.insert(at, parent)

    def clear(self) -> None:
        self.root, self.bytes = _Edge((), [], None), 0
