"""What can go wrong, as exceptions a shop's code can catch by kind."""

from __future__ import annotations

from dataclasses import dataclass


class ReferralError(Exception):
    """Every error of this client."""


@dataclass(frozen=True)
class FieldError:
    field: str | None  # the input field at fault, camelCase path ("context.email")
    code: str  # a UserErrorCode, e.g. "INVALID_CURRENCY"
    message: str


class UserError(ReferralError):
    """The API refused the input (`userErrors`); nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field or 'input'}: {e.code}: {e.message}" for e in errors))
        self.errors = errors

    @property
    def code(self) -> str:
        return self.errors[0].code

    @property
    def field(self) -> str | None:
        return self.errors[0].field


class NotFound(UserError):
    """An id, program or code the merchant does not have."""


class IdempotencyConflict(UserError):
    """The idempotency key was used before with a different input."""


class APIError(ReferralError):
    """The request as a whole was refused (`UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND` on a
    query, an HTTP error status) or the server failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransportError(ReferralError):
    """The API could not be reached, also after the retries."""


class WebhookVerificationError(ReferralError):
    """A webhook whose signature or timestamp does not check out: answer 400 and drop it."""


_BY_CODE: dict[str, type[UserError]] = {"NOT_FOUND": NotFound, "IDEMPOTENCY_CONFLICT": IdempotencyConflict}


def user_error(errors: list[FieldError]) -> UserError:
    return _BY_CODE.get(errors[0].code, UserError)(errors)
