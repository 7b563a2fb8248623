"""What one predict request may ask of the local server, checked the same way for REST and gRPC.

Bounds keep one client from taking the server's memory or a batch thread for long: at most
`max_texts` texts per request and `max_text_bytes` UTF-8 bytes per text. Only the raw-text
signature is served (serving/contract.py); a request naming another signature gets a clear 400.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from serving.contract import SERVING_SIGNATURE
from serving.errors import InvalidArgument

if TYPE_CHECKING:  # servable imports TensorFlow; the command line needs RequestLimits only
    from serving.servable import Servable

# A JSON string can spell one byte as a 6-character escape (\u00e9 is 2 UTF-8 bytes in 6), and
# each text costs a few characters of punctuation: the body bound derived from the text bounds.
_JSON_BYTES_PER_TEXT_BYTE = 6
_JSON_OVERHEAD_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    max_texts: int = 1024
    max_text_bytes: int = 16 * 1024

    def __post_init__(self):
        if self.max_texts < 1 or self.max_text_bytes < 1:
            raise ValueError(f"request limits must be >= 1: {self}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can hold max_texts texts of max_text_bytes each."""
        return (self.max_texts * (self.max_text_bytes * _JSON_BYTES_PER_TEXT_BYTE + 16)
                + _JSON_OVERHEAD_BYTES)

    def check(self, texts: Sequence[bytes]) -> None:
        if not texts:
            raise InvalidArgument("the request has no texts to classify")
        if len(texts) > self.max_texts:
            raise InvalidArgument(f"{len(texts)} texts in one request; this server takes at "
                                  f"most {self.max_texts} (split the request)")
        for index, text in enumerate(texts):
            if len(text) > self.max_text_bytes:
                raise InvalidArgument(f"text {index} is {len(text)} bytes (UTF-8); this server "
                                      f"takes at most {self.max_text_bytes} bytes per text")


def check_signature(servable: Servable, signature_name: str) -> None:
    """Only the default (raw text) signature is served; other names get TF Serving's message."""
    if signature_name in ("", SERVING_SIGNATURE):
        return
    if signature_name in servable.signature_defs.signature_def:
        raise InvalidArgument(f"Serving signature name: \"{signature_name}\": the local server "
                              f"serves only \"{SERVING_SIGNATURE}\" (raw text); use TensorFlow "
                              "Serving for the model's other signatures")
    raise InvalidArgument(f"Serving signature name: \"{signature_name}\" not found in signature "
                          "def")
