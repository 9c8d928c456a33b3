"""Events and tasks: the typed messages domains exchange, and how old versions are read.

An `Event` is an immutable fact another domain may react to; a `Task` is a command for one
domain's task queue. Both carry a `type` and a schema `version` on the class.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bus.errors import InvalidMessageData, UnsupportedMessageVersion

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
M = TypeVar("M", bound="Message")


class Message(BaseModel):
    """Base of `Event` and `Task`: a frozen pydantic model with a wire `type` and `version`.

    Fields named `type` or `version` are not allowed in the payload: those names are the
    class's identity. Unknown payload fields are ignored so that a newer producer's additions
    do not break an older consumer (tolerant read).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: ClassVar[str]
    version: ClassVar[int] = 1
    upcasters: ClassVar[dict[int, Upcaster]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.upcasters = {}
        if "type" in cls.__dict__ and (not isinstance(cls.type, str) or not cls.type):
            raise TypeError(f"{cls.__name__}.type must be a non-empty string")
        if not isinstance(cls.version, int) or cls.version < 1:
            raise TypeError(f"{cls.__name__}.version must be a positive int")

    @classmethod
    def upcaster(cls, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Record a function that lifts a payload of `from_version` to `from_version + 1`."""
        if not 1 <= from_version < cls.version:
            raise ValueError(
                f"{cls.__name__} is version {cls.version}: an upcaster must start from a "
                f"version between 1 and {cls.version - 1}, not {from_version}"
            )

        def record(function: Upcaster) -> Upcaster:
            cls.upcasters[from_version] = function
            return function

        return record

    @classmethod
    def read(cls: builtins.type[M], version: int, data: Mapping[str, Any]) -> M:
        """Build the model from a payload written at `version`.

        Older payloads are upcast step by step; newer ones are read tolerantly (unknown fields
        ignored) and refused only if they no longer fit this model.
        """
        payload = data
        if version < cls.version:
            payload = dict(data)
            for step in range(version, cls.version):
                upcast = cls.upcasters.get(step)
                if upcast is None:
                    raise UnsupportedMessageVersion(
                        f"{cls.type} version {version} cannot be read as version "
                        f"{cls.version}: no upcaster from version {step}; register one with "
                        f"@{cls.__name__}.upcaster(from_version={step})"
                    )
                payload = upcast(dict(payload))
        try:  # model_validate without its wrapper: once per delivery
            return cls.__pydantic_validator__.validate_python(payload)  # type: ignore[no-any-return]
        except ValidationError as error:
            if version > cls.version:
                raise UnsupportedMessageVersion(
                    f"{cls.type} version {version} is newer than the handled version "
                    f"{cls.version} and does not read as it: {_first_errors(error)}"
                ) from error
            raise InvalidMessageData(
                f"{cls.type} version {version} payload is invalid: {_first_errors(error)}"
            ) from error


class Event(Message):
    """An immutable fact: something that happened in the domain that published it."""


class Task(Message):
    """A command for one domain's task queue; `domain` names the domain that runs it."""

    domain: ClassVar[str]


def _first_errors(error: ValidationError, limit: int = 3) -> str:
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors()[:limit]
    ]
    return "; ".join(parts)
