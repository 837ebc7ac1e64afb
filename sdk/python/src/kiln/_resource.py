"""The base of the client's result types.

Results are dataclasses built from the server's JSON by
:meth:`Resource.from_json`: each field takes the JSON member of its name
(or of ``metadata["json"]``), converted by ``metadata["conv"]`` when it is
another Resource or a list of them. ``raw`` keeps the whole JSON object,
so a member this version of the client does not know is still at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, Optional, Type, TypeVar

T = TypeVar("T", bound="Resource")
U = TypeVar("U")


@dataclass
class Resource:
    """A result of the API; ``raw`` is its JSON object as answered."""

    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: Type[T], data: Optional[Mapping[str, Any]]) -> T:
        data = dict(data or {})
        kw: Dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "raw":
                continue
            key = f.metadata.get("json", f.name)
            if key not in data or data[key] is None:
                continue
            conv = f.metadata.get("conv")
            kw[f.name] = conv(data[key]) if conv else data[key]
        return cls(raw=data, **kw)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object this result was built from."""
        return dict(self.raw)


def one(cls: Type[T]) -> Callable[[Any], T]:
    """A converter of a JSON object to cls."""
    return cls.from_json


def many(cls: Type[T]) -> Callable[[Any], List[T]]:
    """A converter of a JSON array of objects to a list of cls."""
    return lambda v: [cls.from_json(x) for x in (v or [])]


def attr(default: Any = None, *, json: str | None = None, conv: Callable[[Any], Any] | None = None,
         factory: Callable[[], Any] | None = None) -> Any:
    """A Resource field: default (or factory), JSON member name, converter."""
    md: Dict[str, Any] = {}
    if json is not None:
        md["json"] = json
    if conv is not None:
        md["conv"] = conv
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


@dataclass
class Page(Generic[U]):
    """One page of a listing: its items and the token of the next page
    (``None`` on the last page)."""

    items: List[U]
    next_page_token: Optional[str] = None

    def __iter__(self) -> Iterator[U]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def paginate(fetch: Callable[[Optional[str]], Page[U]], limit: int | None = None) -> Iterator[U]:
    """Iterates the items of every page: fetch(token) returns the page
    after token (None: the first); stops after limit items when given."""
    token: Optional[str] = None
    seen = 0
    while True:
        page = fetch(token)
        for item in page.items:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield item
        if not page.next_page_token or not page.items:
            return
        token = page.next_page_token
